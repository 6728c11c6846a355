package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// ipPretty re-renders compact JSON the way iproute2's json_writer does with
// -p (lib/json_writer.c): four spaces per level, a space inside array
// brackets, "name": value, one member per line, array elements on one line
// separated by commas, and a final newline.
func ipPretty(compact []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(compact))
	dec.UseNumber()
	w := &jsonWriter{}
	// A stack of containers: '{' or '['; in an object, the next string
	// token is a member name.
	var stack []byte
	wantName := func() bool { return len(stack) > 0 && stack[len(stack)-1] == '{' && !w.afterName }
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				w.begin(byte(t))
				stack = append(stack, byte(t))
			case '}':
				w.end('}')
				stack = stack[:len(stack)-1]
			case ']':
				w.endArray()
				stack = stack[:len(stack)-1]
			}
			w.afterName = false
		case string:
			if wantName() {
				w.name(t)
				w.afterName = true
				continue
			}
			w.value(quoteIP(t))
		case json.Number:
			w.value(t.String())
		case bool:
			w.value(fmt.Sprint(t))
		case nil:
			w.value("null")
		}
		w.afterName = false
	}
	w.buf.WriteByte('\n')
	return w.buf.Bytes(), nil
}

// jsonWriter is json_writer.c's state with pretty printing on.
type jsonWriter struct {
	buf       bytes.Buffer
	depth     int
	sep       byte
	afterName bool
}

func (w *jsonWriter) eol() {
	w.buf.WriteByte('\n')
	w.buf.WriteString(strings.Repeat("    ", w.depth))
}

func (w *jsonWriter) eor() {
	if w.sep != 0 {
		w.buf.WriteByte(w.sep)
	}
	w.sep = ','
}

func (w *jsonWriter) begin(c byte) {
	w.eor()
	w.buf.WriteByte(c)
	w.depth++
	w.sep = 0
	if c == '[' {
		w.buf.WriteByte(' ')
	}
}

func (w *jsonWriter) end(c byte) {
	w.depth--
	if w.sep != 0 {
		w.eol()
	}
	w.buf.WriteByte(c)
	w.sep = ','
}

func (w *jsonWriter) endArray() {
	if w.sep != 0 {
		w.buf.WriteByte(' ')
	}
	w.sep = 0
	w.end(']')
}

func (w *jsonWriter) name(n string) {
	w.eor()
	w.eol()
	w.sep = 0
	w.buf.WriteString(quoteIP(n))
	w.buf.WriteString(": ")
}

func (w *jsonWriter) value(v string) {
	w.eor()
	w.buf.WriteString(v)
}

// quoteIP quotes s as json_writer.c's jsonw_puts: only \t \n \r \f \b \\
// and " are escaped.
func quoteIP(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case '\b':
			b.WriteString(`\b`)
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
