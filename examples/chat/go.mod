module github.com/realtime-go/realtime/examples/chat

go 1.26.0

replace github.com/realtime-go/realtime => ../..

require (
	github.com/prometheus/client_golang v1.25.0
	github.com/prometheus/client_model v0.6.3
	github.com/realtime-go/realtime v0.0.0
	github.com/realtime-go/realtime/natsbroker v0.0.0-00010101000000-000000000000
	github.com/realtime-go/realtime/promobserver v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/redis/go-redis/v9 v9.24.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

require (
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/nats-io/nats.go v1.56.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/realtime-go/realtime/redisbroker v0.0.0-00010101000000-000000000000
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/realtime-go/realtime/natsbroker => ../../natsbroker

replace github.com/realtime-go/realtime/redisbroker => ../../redisbroker

replace github.com/realtime-go/realtime/promobserver => ../../promobserver
