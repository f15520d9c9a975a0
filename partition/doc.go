// Package partition cuts collections into _id ranges and keeps the partition documents through
// which a fleet of copy workers shares the initial copy.
//
// A partition is one Range of one collection. Split plans the ranges of a collection from a sample of
// its _ids, aiming at a size (DefaultTargetBytes), and keeps each range inside one canonical BSON type:
// MongoDB orders _ids of different types by type first, and a range query compares only values of the
// bound's type, so a range that spanned types would silently miss documents. Small collections are one
// Whole range. The ranges of a collection cover each of its documents exactly once, so workers that
// copy their ranges in parallel together copy the collection.
//
// A worker reads its range with Range.Filter in _id order and checkpoints the last _id it copied; after
// a takeover, Filter(checkpoint) is exactly what remains. The Store records partitions, their claims
// (each fenced by a lease) and their checkpoints in the metadata database.
package partition
