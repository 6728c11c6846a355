package rtnl

import (
	"context"
	"errors"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

func linkMsg(t testing.TB, index uint32, name string, flags netlink.HeaderFlags) netlink.Message {
	t.Helper()
	b, err := (&rtnetlink.LinkMessage{Index: index, Attributes: &rtnetlink.LinkAttributes{Name: name, MTU: 1500}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: flags}, Data: b}
}

// reply stamps msgs with the request's sequence and pid, as the kernel does.
func reply(req []netlink.Message, msgs ...netlink.Message) []netlink.Message {
	for i := range msgs {
		msgs[i].Header.Sequence = req[0].Header.Sequence
		msgs[i].Header.PID = req[0].Header.PID
	}
	return msgs
}

// TestDumpInterruptedRetried: a dump the kernel marks NLM_F_DUMP_INTR is
// thrown away and started again; what is returned is a whole dump.
func TestDumpInterruptedRetried(t *testing.T) {
	calls := 0
	c := newConn(nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		calls++
		if req[0].Header.Flags&netlink.Dump == 0 {
			t.Errorf("links listed without a dump request")
		}
		if calls < 3 {
			// A half dump: the second message says the table changed.
			return nltest.Multipart(reply(req,
				linkMsg(t, 1, "lo", 0),
				linkMsg(t, 2, "half", netlink.DumpInterrupted),
				netlink.Message{}, // becomes NLMSG_DONE
			))
		}
		return nltest.Multipart(reply(req,
			linkMsg(t, 1, "lo", 0), linkMsg(t, 2, "eth0", 0), linkMsg(t, 3, "eth1", 0),
			netlink.Message{},
		))
	}))
	defer c.Close()
	links, err := c.Links(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(links) != 3 || links[1].Name != "eth0" || links[2].Name != "eth1" {
		t.Fatalf("after %d dumps got %+v; want the third, whole dump", calls, links)
	}
}

func TestDumpInterruptedBounded(t *testing.T) {
	calls := 0
	c := newConn(nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		calls++
		return nltest.Multipart(reply(req, linkMsg(t, 1, "lo", netlink.DumpInterrupted), netlink.Message{}))
	}))
	defer c.Close()
	links, err := c.Links(context.Background())
	if !errors.Is(err, errDumpInterrupted) || links != nil {
		t.Fatalf("Links = %v, %v; want errDumpInterrupted and nothing", links, err)
	}
	if calls != maxDumpTries {
		t.Errorf("%d tries, want %d", calls, maxDumpTries)
	}
}

// TestLinkByNameIsDirect: LinkByName sends one RTM_GETLINK request (not a
// dump) that names the device in IFLA_IFNAME.
func TestLinkByNameIsDirect(t *testing.T) {
	c := newConn(nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) != 1 || req[0].Header.Type != unix.RTM_GETLINK || req[0].Header.Flags&netlink.Dump != 0 {
			t.Errorf("request %+v: want one RTM_GETLINK without NLM_F_DUMP", req)
		}
		var m rtnetlink.LinkMessage
		if err := m.UnmarshalBinary(req[0].Data); err != nil || m.Attributes == nil || m.Attributes.Name != "veth7" || m.Index != 0 {
			t.Errorf("request body %+v (%v): want IFLA_IFNAME veth7 and index 0", m, err)
		}
		return reply(req, linkMsg(t, 7, "veth7", 0)), nil
	}))
	defer c.Close()
	l, err := c.LinkByName(context.Background(), "veth7")
	if err != nil || l.Index != 7 || l.Name != "veth7" || l.MTU != 1500 {
		t.Fatalf("LinkByName = %+v, %v", l, err)
	}
}

// TestErrorShape: kernel errors keep their errno and read
// "rtnl: OP OBJECT: cause".
func TestErrorShape(t *testing.T) {
	c := newConn(nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		return nltest.Error(int(unix.EEXIST), req)
	}))
	defer c.Close()
	err := c.AddBridge(context.Background(), "br0")
	if !errors.Is(err, unix.EEXIST) || err.Error() != "rtnl: add bridge br0: file exists" {
		t.Fatalf("AddBridge error %q (%v)", err, errors.Is(err, unix.EEXIST))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SetUp(ctx, "br0"); !errors.Is(err, context.Canceled) {
		t.Errorf("SetUp with a cancelled context = %v", err)
	}
}
