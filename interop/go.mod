module github.com/realtime-go/realtime/interop

go 1.26.0

replace github.com/realtime-go/realtime => ../

require (
	github.com/centrifugal/centrifuge v0.40.1
	github.com/chromedp/chromedp v0.23.0
	github.com/coder/websocket v1.8.15
	github.com/gobwas/ws v1.5.0
	github.com/gorilla/websocket v1.5.3
	github.com/lxzan/gws v1.8.9
	github.com/r3labs/sse/v2 v2.10.0
	github.com/realtime-go/realtime v0.0.0
	github.com/redis/go-redis/v9 v9.24.0
	github.com/tmaxmax/go-sse v0.12.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/centrifugal/fdelta v0.0.3 // indirect
	github.com/centrifugal/protocol v0.23.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/nats.go v1.56.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.1 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/quagmt/udecimal v1.10.1 // indirect
	github.com/redis/rueidis v1.0.79 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/realtime-go/realtime/examples/chat v0.0.0-00010101000000-000000000000
	github.com/realtime-go/realtime/natsbroker v0.0.0-00010101000000-000000000000 // indirect
	github.com/realtime-go/realtime/redisbroker v0.0.0-00010101000000-000000000000 // indirect
	golang.org/x/net v0.61.0
	gopkg.in/cenkalti/backoff.v1 v1.1.0 // indirect
)

replace github.com/realtime-go/realtime/natsbroker => ../natsbroker

replace github.com/realtime-go/realtime/redisbroker => ../redisbroker

replace github.com/realtime-go/realtime/examples/chat => ../examples/chat
