package realtime

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"slices"
)

// A cursor is a socket's place in each of its channels: the last event
// id its client keeps, opaque to the client and the same on every node.
// It is encoded as base64url (no padding) of a version byte, 1, followed
// by entries sorted by strictly increasing hash, each the 8-byte
// big-endian FNV-1a-64 hash of the channel name, then the epoch and the
// offset as uvarints. Hashes instead of names keep an id short and of
// bounded size whatever the names; a client could forge any position
// anyway, so nothing is lost by not naming the channel, and a hash
// collision between two channels of one socket (about 2^-64 per pair)
// would only make one resume from the other's offset.
type cursor []cursorEntry

type cursorEntry struct {
	hash uint64
	pos  Position
}

const (
	cursorVersion = 1

	// maxCursorLen bounds a presented id, so a client cannot make the
	// server decode (and keep) an arbitrary amount.
	maxCursorLen = 4096
)

// channelHash names a channel in a cursor.
func channelHash(channel string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(channel))
	return h.Sum64()
}

// decodeCursor parses an id a client presented. The empty id is the
// empty cursor. Anything malformed, non-canonical (unsorted or repeated
// entries, a zero epoch, another spelling of a cursor) or longer than maxCursorLen is refused.
func decodeCursor(s string) (cursor, bool) {
	if s == "" {
		return nil, true
	}
	if len(s) > maxCursorLen {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	// The version byte alone is refused: the empty cursor is spelled "".
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return nil, false
	}
	b = b[1:]
	var c cursor
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, false
		}
		e := cursorEntry{hash: binary.BigEndian.Uint64(b)}
		b = b[8:]
		var n int
		if e.pos.Epoch, n = binary.Uvarint(b); n <= 0 || e.pos.Epoch == 0 {
			return nil, false
		}
		b = b[n:]
		if e.pos.Offset, n = binary.Uvarint(b); n <= 0 {
			return nil, false
		}
		b = b[n:]
		if len(c) > 0 && c[len(c)-1].hash >= e.hash {
			return nil, false
		}
		c = append(c, e)
	}
	// One spelling per cursor: trailing base64 bits and overlong
	// varints would otherwise give one cursor many ids.
	if c.encode() != s {
		return nil, false
	}
	return c, true
}

// encode returns the id of the cursor: "" for the empty one.
func (c cursor) encode() string {
	if len(c) == 0 {
		return ""
	}
	b := make([]byte, 0, 1+len(c)*(8+2*binary.MaxVarintLen64))
	b = append(b, cursorVersion)
	for _, e := range c {
		b = binary.BigEndian.AppendUint64(b, e.hash)
		b = binary.AppendUvarint(b, e.pos.Epoch)
		b = binary.AppendUvarint(b, e.pos.Offset)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// search returns where the entry of hash is, or would be inserted.
func (c cursor) search(hash uint64) (int, bool) {
	return slices.BinarySearchFunc(c, hash, func(e cursorEntry, h uint64) int {
		switch {
		case e.hash < h:
			return -1
		case e.hash > h:
			return 1
		}
		return 0
	})
}

// get returns the position of channel, if the cursor has one.
func (c cursor) get(channel string) (Position, bool) {
	i, ok := c.search(channelHash(channel))
	if !ok {
		return Position{}, false
	}
	return c[i].pos, true
}

// set records p as the position of channel.
func (c *cursor) set(channel string, p Position) { c.setHash(channelHash(channel), p) }

// setHash is set for the channel of hash: a message carries its
// channel's hash, so a socket's writer need not hash the name again.
func (c *cursor) setHash(hash uint64, p Position) {
	i, ok := c.search(hash)
	if ok {
		(*c)[i].pos = p
		return
	}
	*c = slices.Insert(*c, i, cursorEntry{hash: hash, pos: p})
}

// remove forgets channel.
func (c *cursor) remove(channel string) { c.removeHash(channelHash(channel)) }

// removeHash forgets the channel of hash.
func (c *cursor) removeHash(hash uint64) {
	if i, ok := c.search(hash); ok {
		*c = slices.Delete(*c, i, i+1)
	}
}

// clone returns a copy that set and remove do not share.
func (c cursor) clone() cursor { return slices.Clone(c) }
