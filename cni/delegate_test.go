package cni

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// TestDelegateRunsPlugin runs a scripted IPAM plugin through the
// delegation: it must see the caller's environment with CNI_COMMAND
// replaced and the config on stdin, and its error object, its versions and
// its result must come back decoded.
func TestDelegateRunsPlugin(t *testing.T) {
	dir := t.TempDir()
	script := `#!/bin/sh
conf=$(cat)
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
ADD) echo "{\"ips\":[{\"address\":\"10.9.8.7/24\"}],\"dns\":{\"domain\":\"$TEST_MARK\"}}" ;;
DEL) printf '%s' "$conf" > "$0.stdin"; exit 0 ;;
*) echo '{"code":7,"msg":"bad '"$CNI_COMMAND"'","details":"d"}'; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "fake-ipam"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CNI_PATH", "/nonexistent:"+dir)
	t.Setenv("CNI_COMMAND", "ADD")
	t.Setenv("TEST_MARK", "mark.example")
	ctx := context.Background()

	path, err := findPlugin("fake-ipam")
	if err != nil || path != filepath.Join(dir, "fake-ipam") {
		t.Fatalf("findPlugin: %q %v", path, err)
	}
	if _, err := findPlugin("no-such-ipam"); err == nil {
		t.Error("findPlugin found no-such-ipam")
	}
	info, err := pluginVersions(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.SupportedVersions(); len(got) != 2 || got[1] != "1.0.0" {
		t.Errorf("versions %v", got)
	}
	r, err := delegateAddResult(ctx, path, []byte(`{"cniVersion":"1.0.0","name":"n","type":"fake-ipam"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != "1.0.0" {
		t.Errorf("result version %s, want the config's 1.0.0", r.Version())
	}
	res, err := current.NewResultFromResult(r)
	if err != nil || len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.9.8.7/24" || res.DNS.Domain != "mark.example" {
		t.Errorf("result %+v %v: want 10.9.8.7/24 and the caller's TEST_MARK", res, err)
	}
	conf := `{"cniVersion":"1.0.0","name":"n"}`
	if _, err := delegateRun(ctx, path, "DEL", []byte(conf)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "fake-ipam.stdin")); err != nil || string(b) != conf {
		t.Errorf("plugin's stdin %q %v, want %q", b, err, conf)
	}
	_, err = delegateRun(ctx, path, "CHECK", []byte(conf))
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != 7 || ce.Msg != "bad CHECK" || ce.Details != "d" {
		t.Errorf("CHECK error %#v, want the plugin's object", err)
	}
}
