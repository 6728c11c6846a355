package poolwire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"p1": true, "a.b_c-d": true, strings.Repeat("x", NameMax): true,
		"": false, ".x": false, "a/b": false, "a b": false, "é": false, strings.Repeat("x", NameMax+1): false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

// The claim request in the C header is what package pool's server reads.
func TestCSectionClaim(t *testing.T) {
	s := string(CSection(5*time.Second, 10*time.Second))
	zero := string(CSection(0, 10*time.Second))
	if !strings.Contains(s, `#define NSB_POOL_CLAIM_REQUEST "{\"op\":\"claim\",\"wait_ms\":5000}"`) ||
		!strings.Contains(s, "#define NSB_POOL_REPLY_TIMEOUT_MS 15000LL") {
		t.Fatalf("unexpected section:\n%s", s)
	}
	if !strings.Contains(zero, `#define NSB_POOL_CLAIM_REQUEST "{\"op\":\"claim\"}"`) {
		t.Fatalf("unexpected section without a wait:\n%s", zero)
	}
	var r Request
	if err := json.Unmarshal([]byte(`{"op":"claim","wait_ms":5000}`), &r); err != nil || r.Op != OpClaim || r.WaitMs != 5000 {
		t.Fatalf("%+v %v", r, err)
	}
}
