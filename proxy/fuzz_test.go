package proxy

import (
	"bytes"
	"testing"
)

// FuzzReadConnectResponse feeds arbitrary proxy answers to the CONNECT
// response reader. Beyond not panicking, a 2xx answer must hand over
// exactly the bytes after the header block, and the header block must
// end with a blank line.
func FuzzReadConnectResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\ntunnel bytes",
		"HTTP/1.0 200 OK\nContent-Length: 5\n\nabcdefgh",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 4\r\n\r\nnope",
		"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: y\r\n continued\r\n\r\n",
		"garbage\r\n\r\n",
		"HTTP/1.1 200 OK\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		resp, tunnel, err := readConnectResponse(r)
		if err != nil {
			if resp != nil || tunnel != nil {
				t.Fatal("error with a response")
			}
			return
		}
		if resp.StatusCode/100 != 2 {
			if tunnel != nil {
				t.Fatal("tunnel bytes for a refusal")
			}
			return
		}
		rest := append(bytes.Clone(tunnel), data[len(data)-r.Len():]...)
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("tunnel bytes %q are not the end of the input", rest)
		}
		head := data[:len(data)-len(rest)]
		if !bytes.HasSuffix(head, []byte("\n\n")) && !bytes.HasSuffix(head, []byte("\n\r\n")) {
			t.Fatalf("header block %q does not end with a blank line", head)
		}
		if len(head) > MaxResponseHeader {
			t.Fatalf("header block of %d bytes accepted", len(head))
		}
	})
}
