package pool_test

import "encoding/json"

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }
