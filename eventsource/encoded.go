package eventsource

// EncodedEvent is an event in wire form, encoded once to be sent to many
// streams with Stream.SendEncoded, or kept in a History. It is immutable
// and safe for concurrent use.
type EncodedEvent struct {
	id string
	b  []byte
}

// Encode encodes ev as AppendEvent does.
func Encode(ev Event) (*EncodedEvent, error) {
	if err := checkEvent(&ev); err != nil {
		return nil, err
	}
	return &EncodedEvent{id: ev.ID, b: appendEvent(nil, &ev)}, nil
}

// ID returns the event's id, or "" if it has none.
func (e *EncodedEvent) ID() string { return e.id }

// Bytes returns the wire form, ending with the blank line that
// dispatches the event. The caller must not modify it.
func (e *EncodedEvent) Bytes() []byte { return e.b }

// Len returns the size of the wire form in bytes.
func (e *EncodedEvent) Len() int { return len(e.b) }
