package cni_test

import (
	"crypto/sha256"
	"encoding/hex"
)

// hostIfName repeats cni's naming of host veths ("nsc", 4 hex digits of the
// network, 8 of the attachment) so the benchmark's stale veths are the
// network's own; TestHostIfName in cni checks the rule there.
func hostIfName(network, containerID, ifName string) string {
	n := sha256.Sum256([]byte(network))
	a := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return "nsc" + hex.EncodeToString(n[:2]) + hex.EncodeToString(a[:4])
}
