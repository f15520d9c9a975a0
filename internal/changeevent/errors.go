package changeevent

import (
	"errors"
	"fmt"
)

// ErrInvalidated is returned for an invalidate event. Drops, renames and dropDatabase invalidate
// streams opened on one collection or one database; a cluster-wide stream sees them as events and
// goes on, so an invalidate means the stream is not the one fleetsync meant to open.
var ErrInvalidated = errors.New("the change stream was invalidated, which a cluster-wide stream " +
	"(client.Watch) never is: check how the stream was opened, then open a new one after the last applied event")

// MalformedError says a source document lacks a field its format promises, or holds it with the
// wrong type. Parsing stops at the first problem instead of guessing: an event read wrongly would be
// applied wrongly.
type MalformedError struct {
	Source  string // the document, e.g. "the oplog entry at Timestamp(1700000000, 3)"
	Field   string // dotted path to the offending field, e.g. "o2" or "o.applyOps.1.ns"; empty for the whole document
	Problem string // what is wrong, e.g. "is missing" or "is a string, not a document"
}

func (e *MalformedError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s is malformed: it %s", e.Source, e.Problem)
	}
	return fmt.Sprintf("%s is malformed: its field %q %s", e.Source, e.Field, e.Problem)
}
