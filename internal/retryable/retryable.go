// Package retryable tells errors that say something about the work (a document the destination
// refuses, a namespace that is not there) from errors that say only that a server was briefly
// unavailable (a primary stepping down, a node shutting down, a dropped connection). A multi-day
// copy meets the second kind routinely, on any cluster, and must not give up on work because of
// them; it must give up on the first kind after a few tries rather than retry it for ever.
package retryable

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/mongo"
)

// Error codes that say the server, not the request, was the problem. The set is the one MongoDB's
// drivers retry reads and writes on (driver specifications "Retryable Reads" and "Retryable
// Writes"; mongo-driver x/mongo/driver/errors.go retryableCodes), plus the legacy not-primary code,
// a majority read not available yet, a write concern that timed out, and an operation cut off by
// its maxTimeMS (fleetsync bounds every data write by its lease: a server too slow for one batch is
// no fault of the batch).
var codes = map[int32]string{
	6:     "HostUnreachable",
	7:     "HostNotFound",
	50:    "MaxTimeMSExpired",
	64:    "WriteConcernFailed",
	89:    "NetworkTimeout",
	91:    "ShutdownInProgress",
	134:   "ReadConcernMajorityNotAvailableYet",
	189:   "PrimarySteppedDown",
	262:   "ExceededTimeLimit",
	9001:  "SocketException",
	10058: "LegacyNotPrimary",
	10107: "NotWritablePrimary",
	11600: "InterruptedAtShutdown",
	11602: "InterruptedDueToReplStateChange",
	13435: "NotPrimaryNoSecondaryOk",
	13436: "NotPrimaryOrSecondary",
}

// labels are the error labels with which a server (4.4+) or the driver marks an error as safe to
// retry.
var labels = []string{"RetryableWriteError", "TransientTransactionError", "ResumableChangeStreamError"}

// Is reports whether err is transient: a network error or timeout, or a server error carrying one
// of the codes or labels above, anywhere in its chain (a write exception counts when any of its
// write errors or its write concern error does). A context cancelled by the caller is not: the
// caller knows why it stopped.
func Is(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	for _, l := range labels {
		if se.HasErrorLabel(l) {
			return true
		}
	}
	for code := range codes {
		if se.HasErrorCode(int(code)) {
			return true
		}
	}
	return false
}

// OutcomeUnknown reports an error after which a write may or may not have been carried out: the
// connection dropped before the answer, or the client stopped waiting for it. Such a write can
// still run on the server until its deadline (maxTimeMS): whoever holds the lease it was sent under
// waits that out before anyone else may write the same documents.
func OutcomeUnknown(err error) bool {
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
