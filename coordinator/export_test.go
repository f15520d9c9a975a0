package coordinator

import (
	"context"

	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/metadata"
)

// RestoreDeferredAfterDrop is RestoreDeferred with a hook that runs between an index's drop and its
// rebuild: a hook that returns an error stands for a coordinator that dies there.
func RestoreDeferredAfterDrop(ctx context.Context, meta *metadata.DB, source, destination *mongo.Client, log *zap.Logger,
	afterDrop func(ns string, rb metadata.IndexRebuild) error) ([]string, error) {
	return restorer{meta: meta, source: source, destination: destination, log: log, afterDrop: afterDrop}.restore(ctx)
}

// SetAfterIndexDrop sets the coordinator's hook between an index's drop and its build.
func SetAfterIndexDrop(cfg *Config, afterDrop func(ns string, rb metadata.IndexRebuild) error) {
	cfg.afterIndexDrop = afterDrop
}

// MaxCommitStepAttempts is maxCommitStepAttempts, for tests that count attempts.
const MaxCommitStepAttempts = maxCommitStepAttempts
