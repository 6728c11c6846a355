package cni

// The delegation to another IPAM plugin, as the library's pkg/invoke does
// it (FindInPath, GetVersionInfo, DelegateAdd|Del|Check|GC|Status), written
// here because pkg/invoke imports OpenTelemetry's propagation package,
// which links net/http, crypto/tls and x509 into every nsbox process: their
// package initialisation cost every one-shot command (`nsbox link show`)
// about 0.2 ms, a tenth of its run time, for a trace context nsbox never
// sets. What the child sees is what pkg/invoke gives it: the caller's
// environment with CNI_COMMAND replaced, the config on stdin; its stdout
// is the result, or a CNI error object when it fails; a "text file busy"
// exec is retried up to 5 times a second apart. Results are decoded by the
// library (types/create, version).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// findPlugin finds the plugin named plugin in the folders of CNI_PATH, as
// invoke.FindInPath does.
func findPlugin(plugin string) (string, error) {
	if strings.ContainsRune(plugin, os.PathSeparator) {
		return "", fmt.Errorf("invalid plugin name: %s", plugin)
	}
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	if len(paths) == 0 {
		return "", errors.New("no paths provided")
	}
	for _, dir := range paths {
		p := filepath.Join(dir, plugin)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("failed to find plugin %q in path %s", plugin, paths)
}

// pluginEnv is the caller's environment with the CNI_ variables in set
// replacing the caller's own.
func pluginEnv(set ...string) []string {
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, s := range set {
			if sk, _, _ := strings.Cut(s, "="); sk == k {
				replaced = true
				break
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}

// execPlugin runs the plugin at path with stdin and env and returns its
// stdout; a failure is the plugin's CNI error object when it printed one.
func execPlugin(ctx context.Context, path string, stdin []byte, env []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	var err error
	for i := 0; i <= 5; i++ {
		stdout.Reset()
		stderr.Reset()
		c := exec.CommandContext(ctx, path)
		c.Env = env
		c.Stdin = bytes.NewReader(stdin)
		c.Stdout = &stdout
		c.Stderr = &stderr
		if err = c.Run(); err == nil {
			break
		}
		if !errors.Is(err, unix.ETXTBSY) {
			break
		}
		select { // being written right now: wait and try again
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return nil, pluginError(err, stdout.Bytes(), stderr.Bytes())
	}
	if stderr.Len() > 0 {
		_, _ = stderr.WriteTo(os.Stderr) // informational, as pkg/invoke does
	}
	return stdout.Bytes(), nil
}

// pluginError turns a failed plugin run into a CNI error object.
func pluginError(err error, stdout, stderr []byte) error {
	e := &types.Error{}
	switch {
	case len(stdout) == 0 && len(stderr) == 0:
		e.Msg = fmt.Sprintf("netplugin failed with no error message: %v", err)
	case len(stdout) == 0:
		e.Msg = fmt.Sprintf("netplugin failed: %q: %v", string(stderr), err)
	default:
		if perr := json.Unmarshal(stdout, e); perr != nil {
			e.Msg = fmt.Sprintf("netplugin failed but error parsing its diagnostic message %q: %v", string(stdout), perr)
		}
	}
	return e
}

// pluginVersions asks the plugin at path which spec versions it speaks.
func pluginVersions(ctx context.Context, path string) (version.PluginInfo, error) {
	stdin := []byte(fmt.Sprintf(`{"cniVersion":%q}`, version.Current()))
	out, err := execPlugin(ctx, path, stdin, pluginEnv("CNI_COMMAND=VERSION",
		"CNI_CONTAINERID=", "CNI_NETNS=dummy", "CNI_ARGS=", "CNI_IFNAME=dummy", "CNI_PATH=dummy"))
	if err != nil {
		if err.Error() == "unknown CNI_COMMAND: VERSION" {
			return version.PluginSupports("0.1.0"), nil
		}
		return nil, err
	}
	return (&version.PluginDecoder{}).Decode(out)
}

// delegateRun runs verb (ADD, DEL, CHECK, GC, STATUS) of the plugin at
// path (findPlugin's) with conf and returns its stdout.
func delegateRun(ctx context.Context, path, verb string, conf []byte) ([]byte, error) {
	return execPlugin(ctx, path, conf, pluginEnv("CNI_COMMAND="+verb))
}

// delegateAddResult runs ADD of the plugin at path and decodes its result
// in the version it says (the config's when it says none).
func delegateAddResult(ctx context.Context, path string, conf []byte) (types.Result, error) {
	out, err := delegateRun(ctx, path, "ADD", conf)
	if err != nil {
		return nil, err
	}
	confVersion, err := (&version.ConfigDecoder{}).Decode(conf)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("failed to unmarshal raw result: %w", err)
	}
	if v, ok := raw["cniVersion"].(string); ok && v != "" {
		return create.Create(v, out)
	}
	if raw == nil {
		raw = map[string]any{}
	}
	raw["cniVersion"] = confVersion
	if out, err = json.Marshal(raw); err != nil {
		return nil, fmt.Errorf("failed to remarshal fixed result: %w", err)
	}
	return create.Create(confVersion, out)
}
