package extensions

import (
	"errors"
	"fmt"
	"strings"

	"github.com/realtime-go/realtime/internal/quote"
)

// Param is one extension parameter. A parameter given without a value has
// Value "".
type Param struct {
	Name  string
	Value string
}

// Offer is one element of a Sec-WebSocket-Extensions list: an extension
// name and its parameters, in order. The same type carries a client's
// offer and a server's response.
type Offer struct {
	Name   string
	Params []Param
}

// Get returns the value of the first parameter called name and whether
// there is one.
func (o Offer) Get(name string) (string, bool) {
	for _, p := range o.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// String formats the offer as it appears in the header.
func (o Offer) String() string {
	var b strings.Builder
	b.WriteString(o.Name)
	for _, p := range o.Params {
		b.WriteString("; ")
		b.WriteString(p.Name)
		if p.Value != "" {
			b.WriteByte('=')
			b.WriteString(p.Value)
		}
	}
	return b.String()
}

// Format formats offers as a Sec-WebSocket-Extensions value.
func Format(offers []Offer) string {
	s := make([]string, len(offers))
	for i, o := range offers {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

// ErrSyntax is wrapped by Parse's errors. They quote at most a short
// prefix of the value, which a peer may make as long as it likes.
var ErrSyntax = errors.New("extensions: malformed Sec-WebSocket-Extensions")

// Parse parses the values of Sec-WebSocket-Extensions header fields by the
// grammar of RFC 6455 §9.1: a comma-separated list of extension tokens
// each followed by ";"-separated parameters, whose values are tokens or
// quoted strings that unescape to tokens. The list keeps its order, and
// several offers of one extension stay separate.
func Parse(values ...string) ([]Offer, error) {
	var out []Offer
	for _, v := range values {
		p := parser{s: v}
		for {
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() == ',' {
				p.i++ // empty list element, allowed by the #rule
				continue
			}
			o, err := p.offer()
			if err != nil {
				return nil, err
			}
			out = append(out, o)
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, p.errorf("expected ',' after extension %s", quote.Prefix(o.Name))
			}
			p.i++
		}
	}
	return out, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }

func (p *parser) skipSpace() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d of %s", ErrSyntax, fmt.Sprintf(format, args...), p.i, quote.Prefix(p.s))
}

func (p *parser) offer() (Offer, error) {
	name := p.token()
	if name == "" {
		return Offer{}, p.errorf("expected an extension token")
	}
	o := Offer{Name: name}
	for {
		p.skipSpace()
		if p.done() || p.peek() != ';' {
			return o, nil
		}
		p.i++
		p.skipSpace()
		param := Param{Name: p.token()}
		if param.Name == "" {
			return Offer{}, p.errorf("expected a parameter token")
		}
		p.skipSpace()
		if !p.done() && p.peek() == '=' {
			p.i++
			p.skipSpace()
			v, err := p.value()
			if err != nil {
				return Offer{}, err
			}
			param.Value = v
		}
		o.Params = append(o.Params, param)
	}
}

func (p *parser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted string, which must unescape to a token.
func (p *parser) value() (string, error) {
	if p.done() || p.peek() != '"' {
		v := p.token()
		if v == "" {
			return "", p.errorf("expected a parameter value")
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for {
		if p.done() {
			return "", p.errorf("unterminated quoted string")
		}
		c := p.peek()
		p.i++
		switch c {
		case '"':
			v := b.String()
			if v == "" || !isToken(v) {
				return "", p.errorf("quoted value is not a token")
			}
			return v, nil
		case '\\':
			if p.done() {
				return "", p.errorf("unterminated quoted string")
			}
			c = p.peek()
			p.i++
		}
		b.WriteByte(c)
	}
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// isTokenChar reports whether c is a tchar of RFC 7230 §3.2.6.
func isTokenChar(c byte) bool {
	if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
