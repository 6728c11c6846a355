// Package poolwire is the wire format of a warm pool's socket (package
// pool): where the socket is, what a client sends, what a granted claim
// carries, and which names a pool may have. Package pool speaks it, and
// the C fast path of `nsbox run --pool` gets it as a section of
// csrc/nsbox_gen.h rendered by CSection, so the C never carries a copy.
package poolwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nsbox/nsbox/internal/names"
)

// SocketDir is where pools serve their sockets, NAME + SocketSuffix.
const SocketDir = "/run/nsbox/pools"

// SocketSuffix ends a pool socket's file name.
const SocketSuffix = ".sock"

// MaxMessage is the largest request or reply (SOCK_SEQPACKET: one message
// each way, then the connection holds the claim until it is closed).
const MaxMessage = 64 * 1024

// The requests.
const (
	OpClaim  = "claim"
	OpStatus = "status"
	OpStop   = "stop"
)

// Request is what a client sends: one message per connection.
type Request struct {
	Op     string `json:"op"`                // OpClaim, OpStatus or OpStop
	WaitMs int64  `json:"wait_ms,omitempty"` // claim: how long to wait for a ready namespace
}

// A granted claim's reply carries ClaimFds fds (SCM_RIGHTS): the claimed
// namespace's at ClaimNetnsFd, then the bridge namespace's, and, when the
// namespace has DNS servers, one more at ClaimResolvFd: its resolv.conf, a
// file under ResolvDir(NAME) that a sandbox with a new mount namespace
// binds over ResolvTarget. An empty pool's reply carries one (the bridge's
// namespace), an error none. The claim lasts until the client closes the
// connection (or dies); the namespace is then destroyed, never reused.
const (
	ClaimFds      = 2
	ClaimNetnsFd  = 0
	ClaimResolvFd = 2
)

// ResolvTarget is where a claimed namespace's resolv.conf is bound.
const ResolvTarget = "/etc/resolv.conf"

// ResolvDir is the folder of pool name's resolv.conf files, one a
// namespace, which only the pool writes.
func ResolvDir(name string) string { return SocketDir + "/" + name + ".d" }

// NameMax is the longest pool name in bytes.
const NameMax = 64

// ValidName tells whether name may name a pool: 1 to NameMax bytes of
// letters, digits, '.', '_' and '-', not starting with '.'.
func ValidName(name string) bool {
	if name == "" || len(name) > NameMax || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CSection renders the pool part of csrc/nsbox_gen.h: the socket's place,
// the claim request the C sends (waiting wait for a ready namespace, and
// replyMargin more for the reply, as run's Go path), the fds of a granted
// claim, and the name rule as internal/names' C table (nsb_rule_pool)
// computed by ValidName itself (names.Probe).
func CSection(wait, replyMargin time.Duration) []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	req, err := json.Marshal(Request{Op: OpClaim, WaitMs: wait.Milliseconds()})
	if err != nil {
		panic(err)
	}
	p("/* The pool socket's wire format (internal/poolwire). */\n")
	p("#define NSB_POOL_SOCKET_DIR %q\n", SocketDir)
	p("#define NSB_POOL_SOCKET_SUFFIX %q\n", SocketSuffix)
	p("#define NSB_POOL_MAX_MESSAGE %d\n", MaxMessage)
	p("#define NSB_POOL_CLAIM_REQUEST %q\n", req)
	p("#define NSB_POOL_REPLY_TIMEOUT_MS %dLL\n", (wait + replyMargin).Milliseconds())
	p("#define NSB_POOL_CLAIM_FDS %d\n", ClaimFds)
	p("#define NSB_POOL_CLAIM_NETNS_FD %d\n", ClaimNetnsFd)
	p("#define NSB_POOL_CLAIM_RESOLV_FD %d\n", ClaimResolvFd)
	p("#define NSB_POOL_RESOLV_TARGET %q\n", ResolvTarget)
	p("%s", names.Probe(NameMax, ValidName).C("nsb_rule_pool"))
	return b.Bytes()
}
