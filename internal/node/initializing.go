package node

import (
	"context"
	"sync/atomic"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/web"
)

// serviceSwitch is the API's service, replaced once the node is ready: the API is served before the
// node has connected to its clusters.
type serviceSwitch struct {
	cur atomic.Pointer[web.Service]
}

func (s *serviceSwitch) set(svc web.Service) { s.cur.Store(&svc) }
func (s *serviceSwitch) get() web.Service    { return *s.cur.Load() }

func (s *serviceSwitch) Start(ctx context.Context, req web.StartRequest) error {
	return s.get().Start(ctx, req)
}
func (s *serviceSwitch) Progress(ctx context.Context) (web.Progress, error) {
	return s.get().Progress(ctx)
}
func (s *serviceSwitch) Pause(ctx context.Context) error   { return s.get().Pause(ctx) }
func (s *serviceSwitch) Resume(ctx context.Context) error  { return s.get().Resume(ctx) }
func (s *serviceSwitch) Commit(ctx context.Context) error  { return s.get().Commit(ctx) }
func (s *serviceSwitch) Reverse(ctx context.Context) error { return s.get().Reverse(ctx) }
func (s *serviceSwitch) RetryPartitions(ctx context.Context) (int64, error) {
	return s.get().RetryPartitions(ctx)
}

// initializing answers for a node that is still connecting to its clusters and has not read the
// sync's shared state: INITIALIZING, and every call but progress refused with a 503 to retry.
type initializing struct{}

func (initializing) Progress(context.Context) (web.Progress, error) {
	return web.Progress{State: metadata.StateInitializing, Info: "connecting to the clusters",
		Source: web.Ping{PingLatencyMs: -1}, Destination: web.Ping{PingLatencyMs: -1}, Warnings: []string{}}, nil
}

func (initializing) Start(context.Context, web.StartRequest) error  { return notReady() }
func (initializing) Pause(context.Context) error                    { return notReady() }
func (initializing) Resume(context.Context) error                   { return notReady() }
func (initializing) Commit(context.Context) error                   { return notReady() }
func (initializing) Reverse(context.Context) error                  { return notReady() }
func (initializing) RetryPartitions(context.Context) (int64, error) { return 0, notReady() }

func notReady() error {
	return web.Unavailable("NotReady", "this node is still connecting to the clusters (state INITIALIZING); call again once /progress shows another state")
}
