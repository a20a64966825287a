module github.com/realtime-go/realtime/redisbroker

go 1.26.0

require (
	github.com/realtime-go/realtime v0.0.0
	github.com/redis/go-redis/v9 v9.24.0
	go.uber.org/goleak v1.3.0
)

replace github.com/realtime-go/realtime => ../

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/net v0.58.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
