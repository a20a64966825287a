package realtime

import (
	"context"

	"github.com/realtime-go/realtime/websocket"
)

// readLoop is a WebSocket socket's read goroutine: it reads client
// messages and hands them to receive, one at a time. Reading also
// processes control frames, so it is what sees the pongs of the
// heartbeat and the peer's close frame.
func (s *Socket) readLoop() {
	defer s.setEnded(&s.readerEnd, &s.readerDone)
	for {
		typ, p, err := s.ws.Read(context.Background())
		if err != nil {
			// The reader sets no deadlines of its own and its context
			// never ends: a deadline error is a write that timed out and
			// closed the connection, which the reader may report before
			// the writer does.
			s.end(timeoutError(context.Background(), err))
			return
		}
		if typ != websocket.MessageText {
			// realtime messages are text on both transports.
			s.startClose(websocket.StatusUnsupportedData, "binary messages are not supported", nil)
			continue
		}
		s.inMessage.Store(true)
		s.receive(string(p))
		s.inMessage.Store(false)
	}
}
