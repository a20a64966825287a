module github.com/realtime-go/realtime/examples/chat

go 1.26

replace github.com/realtime-go/realtime => ../..

require (
	github.com/realtime-go/realtime v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)
