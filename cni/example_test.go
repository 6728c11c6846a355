package cni_test

import (
	"fmt"

	"github.com/nsbox/nsbox/cni"
)

// A network configuration as a runtime passes it: nsbox on bridge cni0 with
// host-local-like addresses. ParseConfig applies the defaults and checks it
// without touching the system.
func ExampleParseConfig() {
	conf := []byte(`{
		"cniVersion": "1.1.0", "name": "lab", "type": "nsbox",
		"bridge": "cni0", "isDefaultGateway": true, "ipMasq": true,
		"ipam": {"type": "nsbox-range", "subnet": "10.88.0.0/16"}
	}`)
	n, err := cni.ParseConfig(conf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.Name, n.Bridge, n.IsGateway, n.IPAMConf.Type)

	_, err = cni.ParseConfig([]byte(`{"cniVersion": "1.1.0", "name": "lab", "type": "nsbox", "mtu": "big"}`))
	fmt.Println(err)
	// Output:
	// lab cni0 true nsbox-range
	// decode network config: json: cannot unmarshal string into Go struct field NetConf.mtu of type int
}
