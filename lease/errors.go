package lease

import (
	"errors"
	"fmt"
)

// ErrLost matches (with errors.Is) every *LostError.
var ErrLost = errors.New("lease lost")

// HeldError says a lease could not be acquired because another node holds it and it is live.
type HeldError struct {
	Name  string
	Owner string // the holder when the acquisition failed; "" if it changed hands meanwhile
	Epoch int64
}

func (e *HeldError) Error() string {
	if e.Owner == "" {
		return fmt.Sprintf("lease %s is held by another node; try again", e.Name)
	}
	return fmt.Sprintf("lease %s is held by %s (epoch %d) until it releases it or stops renewing it", e.Name, e.Owner, e.Epoch)
}

// LostError says Owner no longer holds lease Name at Epoch, so it must stop the work the lease
// protects; any fenced write it still attempts will be rejected.
type LostError struct {
	Name   string
	Owner  string
	Epoch  int64
	Reason string // what happened, as a clause: "node-b took it over at epoch 4"
	Err    error  // the last renewal error, when a Keeper gave up without hearing back
}

func (e *LostError) Error() string {
	return fmt.Sprintf("lease %s is no longer held by %s at epoch %d: %s", e.Name, e.Owner, e.Epoch, e.Reason)
}

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }

// Unwrap returns the last renewal error, if any.
func (e *LostError) Unwrap() error { return e.Err }
