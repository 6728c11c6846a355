package main

import "strings"

// oneline returns rec, one record of text output ending in a line break,
// as ip -o (-oneline) prints it: the record's inner line breaks become
// "\" and its last one stays (iproute2's _SL_).
func oneline(rec string) string {
	body, nl := strings.CutSuffix(rec, "\n")
	body = strings.ReplaceAll(body, "\n", `\`)
	if nl {
		body += "\n"
	}
	return body
}

// record returns rec as the -o flag wants it.
func (e *env) record(rec string) string {
	if e.oneline {
		return oneline(rec)
	}
	return rec
}
