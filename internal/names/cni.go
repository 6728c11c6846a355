package names

import (
	"crypto/sha256"
	"encoding/hex"
)

// CNIHostPrefix starts the name of every host end of a veth nsbox's CNI
// plugin creates: "nsc", 4 hex digits of the network's name, 8 of the
// attachment. The name is a function of (network, container, ifname), so
// DEL finds the veth without any state and GC recognises the network's own
// ports.
const CNIHostPrefix = "nsc"

// CNINetTag is the part of a host veth name that names the network: every
// host veth of network starts with it.
func CNINetTag(network string) string {
	h := sha256.Sum256([]byte(network))
	return CNIHostPrefix + hex.EncodeToString(h[:2])
}

// CNIHostLink is the name of the host end of the veth of (network,
// containerID, ifName): 15 bytes, within the Link rule.
func CNIHostLink(network, containerID, ifName string) string {
	h := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return CNINetTag(network) + hex.EncodeToString(h[:4])
}
