package extensions

import (
	"errors"
	"fmt"

	"github.com/realtime-go/realtime/internal/quote"
)

// ErrNegotiation is wrapped by errors of a negotiation that cannot
// succeed: a server response the client cannot accept, or a server
// configured with extensions that claim the same RSV bit.
var ErrNegotiation = errors.New("extensions: negotiation failed")

// ClientOffers returns the offers of exts, in order, for the request's
// Sec-WebSocket-Extensions field.
func ClientOffers(exts []Extension) []Offer {
	offers := make([]Offer, len(exts))
	for i, e := range exts {
		offers[i] = e.ClientOffer()
	}
	return offers
}

// Negotiated is the outcome of a negotiation: the accepted extensions as
// the server's response lists them, their sessions in the same order (the
// order messages pass them), and the RSV bits they own.
type Negotiated struct {
	Accepted []Offer
	Sessions []Session
	RSV      byte
}

// Close closes every session.
func (n Negotiated) Close() { closeAll(n.Sessions) }

// ClientActivate activates the extensions a server accepted, given the
// values of its Sec-WebSocket-Extensions response fields. It fails when
// the response is malformed, names an extension that was not offered or
// names one twice, or accepts extensions whose RSV bits collide. The
// sessions come in the response's order, the order messages pass them.
func ClientActivate(offered []Extension, response []string) (Negotiated, error) {
	accepted, err := Parse(response...)
	if err != nil {
		return Negotiated{}, err
	}
	var sessions []Session
	fail := func(err error) (Negotiated, error) {
		closeAll(sessions)
		return Negotiated{}, err
	}
	var used byte
	seen := map[string]bool{}
	for _, a := range accepted {
		ext := find(offered, a.Name)
		if ext == nil {
			return fail(fmt.Errorf("%w: server accepted %s, which was not offered", ErrNegotiation, quote.Prefix(a.Name)))
		}
		if seen[a.Name] {
			return fail(fmt.Errorf("%w: server accepted %q twice", ErrNegotiation, a.Name))
		}
		seen[a.Name] = true
		if ext.RSV()&used != 0 {
			return fail(fmt.Errorf("%w: %q claims an RSV bit already in use", ErrNegotiation, a.Name))
		}
		used |= ext.RSV()
		s, err := ext.ClientActivate(a)
		if err != nil {
			return fail(fmt.Errorf("%w: %s: %w", ErrNegotiation, a.Name, err))
		}
		sessions = append(sessions, s)
	}
	return Negotiated{Accepted: accepted, Sessions: sessions, RSV: used}, nil
}

// ServerNegotiate answers a client's offers, given the values of its
// Sec-WebSocket-Extensions request fields, with the server's extensions in
// its order of preference. It returns the response's offers and the
// sessions, in the same order. A malformed request is an error wrapping
// ErrSyntax; extensions that claim the same RSV bit are a configuration
// error wrapping ErrNegotiation.
func ServerNegotiate(exts []Extension, request []string) (Negotiated, error) {
	var n Negotiated
	if err := checkRSV(exts); err != nil {
		return n, err
	}
	if len(request) == 0 || len(exts) == 0 {
		return n, nil
	}
	offers, err := Parse(request...)
	if err != nil {
		return n, err
	}
	for _, ext := range exts {
		var mine []Offer
		for _, o := range offers {
			if o.Name == ext.Name() {
				mine = append(mine, o)
			}
		}
		if len(mine) == 0 {
			continue
		}
		if resp, s, ok := ext.ServerNegotiate(mine); ok {
			n.Accepted = append(n.Accepted, resp)
			n.Sessions = append(n.Sessions, s)
			n.RSV |= ext.RSV()
		}
	}
	return n, nil
}

// checkRSV reports extensions configured together whose RSV bits collide.
func checkRSV(exts []Extension) error {
	var used byte
	for _, e := range exts {
		if e.RSV()&used != 0 {
			return fmt.Errorf("%w: %q claims an RSV bit another configured extension owns", ErrNegotiation, e.Name())
		}
		used |= e.RSV()
	}
	return nil
}

func find(exts []Extension, name string) Extension {
	for _, e := range exts {
		if e.Name() == name {
			return e
		}
	}
	return nil
}

func closeAll(sessions []Session) {
	for _, s := range sessions {
		s.Close()
	}
}
