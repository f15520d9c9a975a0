package node

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/preflight"
	"github.com/fleetsync/fleetsync/web"
)

// preflight checks, before anything is written, that a sync with req's parameters can succeed on
// these clusters, and returns its options. Each refusal is one sentence saying what to do.
func (n *node) preflight(ctx context.Context, req web.StartRequest) (metadata.Options, error) {
	opts := metadata.Options{
		Include: req.IncludeNamespaces, Exclude: req.ExcludeNamespaces,
		BuildIndexes: req.BuildIndexes, Reversible: req.Reversible,
		WriteBlocking: string(req.EnableUserWriteBlocking), Verification: req.VerificationEnabled(),
		PreExistingDestinationData: req.PreExistingDestinationData,
	}
	if opts.BuildIndexes == "" {
		opts.BuildIndexes = metadata.BuildIndexesAfterCopy
	}
	src, err := preflight.Probe(ctx, "cluster0", n.source)
	if err != nil {
		return opts, web.Unavailable("ClusterUnavailable", "%v", err)
	}
	dst, err := preflight.Probe(ctx, "cluster1", n.destination)
	if err != nil {
		return opts, web.Unavailable("ClusterUnavailable", "%v", err)
	}
	if err := preflight.CheckVersions(src, dst); err != nil {
		return opts, web.BadRequest("UnsupportedVersion", "%v", err)
	}
	for _, c := range []preflight.Cluster{src, dst} {
		if err := preflight.CheckTopology(c, n.cfg.Sandbox); err != nil {
			return opts, web.BadRequest("UnsupportedTopology", "%v", err)
		}
	}

	// Write blocking: mongosync's default is destinationOnly where the clusters have it.
	both := preflight.SupportsWriteBlocking(src) && preflight.SupportsWriteBlocking(dst)
	if opts.Reversible && !both {
		return opts, web.BadRequest("ReverseNotSupported",
			"reversible: true needs user write blocking (setUserWriteBlockMode, MongoDB 6.0+) on both clusters, but cluster0 runs %s and cluster1 %s; "+
				"start without reversible, or upgrade both clusters", src.Version, dst.Version)
	}
	switch opts.WriteBlocking {
	case "":
		opts.WriteBlocking = metadata.WriteBlockingNone
		if both {
			opts.WriteBlocking = metadata.WriteBlockingDestinationOnly
		}
	case metadata.WriteBlockingDestinationOnly, metadata.WriteBlockingBoth:
		if !both {
			return opts, web.BadRequest("WriteBlockingNotSupported",
				"enableUserWriteBlocking %q needs setUserWriteBlockMode (MongoDB 6.0+) on both clusters, but cluster0 runs %s and cluster1 %s; "+
					"use \"none\" and stop writes to the source yourself before /commit", opts.WriteBlocking, src.Version, dst.Version)
		}
	}

	// Privileges, once write blocking is decided: it decides what each cluster's user needs.
	need0, need1 := preflight.Plan{
		Include:          opts.Include,
		BlockDestination: opts.WriteBlocking == metadata.WriteBlockingDestinationOnly || opts.BlocksSource(),
		BlockSource:      opts.BlocksSource(),
		Reversible:       opts.Reversible,
	}.Needs()
	for _, c := range []struct {
		label  string
		client *mongo.Client
		needs  []preflight.Need
	}{{"cluster0", n.source, need0}, {"cluster1", n.destination, need1}} {
		warning, err := preflight.CheckClusterPrivileges(ctx, c.label, c.client, c.needs)
		var missing *preflight.MissingPrivilegesError
		switch {
		case errors.As(err, &missing):
			return opts, web.BadRequest("InsufficientPermissions", "%v", err)
		case err != nil:
			return opts, web.Unavailable("ClusterUnavailable", "%v", err)
		case warning != "":
			opts.PreflightWarnings = append(opts.PreflightWarnings, warning)
		}
	}

	// Change events: without a start time, or without events, nothing after the copy could be applied.
	if _, err := clusterclock.Now(ctx, n.source); err != nil {
		return opts, web.BadRequest("InvalidSource", "%v", err)
	}
	if _, err := applier.SourceFor(src, n.cfg.ChangeSource); err != nil {
		return opts, web.BadRequest("InvalidSource", "%v", err)
	}
	if opts.Reversible {
		if _, err := applier.SourceFor(dst, n.cfg.ChangeSource); err != nil {
			return opts, web.BadRequest("ReverseNotSupported", "reversible: true needs change events from cluster1 once it is the source: %v", err)
		}
	}

	filter := opts.Filter(n.cfg.MetadataDB)
	if !opts.PreExistingDestinationData {
		if err := preflight.CheckDestinationFree(ctx, n.destination, filter); err != nil {
			return opts, web.BadRequest("DestinationNotEmpty", "%v", err)
		}
	}
	window, ok, err := preflight.ReadOplogWindow(ctx, n.source)
	if err != nil {
		return opts, web.Unavailable("ClusterUnavailable", "cluster0: reading its oplog window: %v", err)
	}
	if ok {
		total, err := preflight.EstimateBytes(ctx, n.source, filter)
		if err != nil {
			return opts, web.Unavailable("ClusterUnavailable", "%v", err)
		}
		ttl := n.cfg.LeaseTTL
		if ttl <= 0 {
			ttl = DefaultLeaseTTL // a node built without Run's defaults (tests)
		}
		warning, err := preflight.CheckOplogWindow(window, total, ttl)
		if err != nil {
			return opts, web.BadRequest("OplogWindowTooSmall", "%v", err)
		}
		if warning != "" {
			opts.PreflightWarnings = append(opts.PreflightWarnings, warning)
		}
	}
	// Said once here, where the start is decided; /progress repeats them from the sync's options.
	for _, w := range opts.PreflightWarnings {
		n.log.Warn("preflight: " + w)
	}
	return opts, nil
}
