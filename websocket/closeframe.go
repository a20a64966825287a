package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// StatusCode is a close code (RFC 6455 §7.4 and the IANA registry).
type StatusCode int

// The close codes of RFC 6455 §7.4.1 and the IANA registry.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005 // never sent: the peer's close frame had no code
	StatusAbnormalClosure         StatusCode = 1006 // never sent: the connection ended without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015 // never sent
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusRcvd:            "no status",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake",
}

func (c StatusCode) String() string {
	if s, ok := statusNames[c]; ok {
		return s
	}
	switch {
	case c >= 3000 && c <= 3999:
		return "registered"
	case c >= 4000 && c <= 4999:
		return "private"
	}
	return "unknown"
}

// validWireCode reports whether code may appear in a close frame, in either
// direction: 1005, 1006 and 1015 are reserved for local reporting, and
// 1004 and 1016-2999 are reserved or unassigned.
func validWireCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// CloseError is the close frame a peer sent: its code and reason. Reads
// after the peer closed return an error that wraps it; see CloseStatus.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e CloseError) Error() string {
	return fmt.Sprintf("websocket: closed by peer: %d (%s) %q", int(e.Code), e.Code, e.Reason)
}

// CloseStatus returns the code of the CloseError in err's chain, or -1 when
// there is none.
func CloseStatus(err error) StatusCode {
	var ce CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// parseClosePayload decodes the body of a close frame (RFC 6455 §5.5.1).
// An empty body means StatusNoStatusRcvd.
func parseClosePayload(p []byte) (CloseError, error) {
	switch len(p) {
	case 0:
		return CloseError{Code: StatusNoStatusRcvd}, nil
	case 1:
		return CloseError{}, protocolErr(StatusProtocolError, "close payload of one byte")
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !validWireCode(code) {
		return CloseError{}, protocolErr(StatusProtocolError, fmt.Sprintf("invalid close code %d", int(code)))
	}
	reason := p[2:]
	if !utf8.Valid(reason) {
		return CloseError{}, &ProtocolError{Code: StatusInvalidFramePayloadData, Reason: "close reason is not UTF-8", Err: ErrInvalidUTF8}
	}
	return CloseError{Code: code, Reason: string(reason)}, nil
}

// checkClose validates a close code and reason an application wants to send.
func checkClose(code StatusCode, reason string) error {
	if !validWireCode(code) {
		return fmt.Errorf("websocket: close code %d may not be sent", int(code))
	}
	if len(reason) > maxCloseReasonSize {
		return fmt.Errorf("websocket: close reason of %d bytes exceeds %d", len(reason), maxCloseReasonSize)
	}
	if !utf8.ValidString(reason) {
		return fmt.Errorf("websocket: close reason is not UTF-8")
	}
	return nil
}

// appendClosePayload appends the body of a close frame.
func appendClosePayload(dst []byte, code StatusCode, reason string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}
