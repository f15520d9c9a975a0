// Package realdocs holds real MongoDB server documents, change stream events and oplog entries as
// a 6.0 or 7.0 server sends them, used as test fixtures by the normaliser's tests
// (internal/changeevent: FromChangeStream and FromOplog must read each into the expected events)
// and by the applier's tests (applier/realdocs_test.go: the same events, applied to a sandbox
// destination, must leave what MongoDB would hold). Each document is kept here once, so that both
// suites read the same bytes; a document only one suite uses stays in that suite.
//
// Every constant is relaxed Extended JSON, field order significant, to be read with
// bson.UnmarshalExtJSON(b, false, ...). Each carries a comment naming where it comes from. The
// package holds nothing else and is imported by tests only.
//
// Change stream events (changestream.go) are the examples of MongoDB's "Change Events" reference
// pages (https://www.mongodb.com/docs/manual/reference/change-events/<event>/, 6.0 and 7.0),
// written in relaxed Extended JSON. The pages elide some values as <Resume Token>, <Timestamp>,
// <ISODate>; those are filled in with values of the shape a server sends: a resume token is
// {_data: "82" + clusterTime as 8 hex bytes + ...} (the two real tokens of the update page are
// used as they are), and wallTime matches clusterTime. Where a page has no example for a variant
// (a rename with showExpandedEvents, a create with options), the document is built the way the
// server builds it in src/mongo/db/pipeline/change_stream_event_transform.cpp, and says so.
//
// Oplog entries (oplog.go): MongoDB documents no reference page for oplog entries; these have the
// shape a 6.0 or 7.0 server writes to local.oplog.rs, as db.getSiblingDB("local").oplog.rs.find()
// prints them in relaxed Extended JSON. Each names where its shape comes from in the server's
// source: src/mongo/db/repl/oplog_entry.idl (the common fields ts, t, v, wall, ui, lsid, txnNumber,
// stmtId, prevOpTime), src/mongo/db/op_observer/op_observer_impl.cpp (what each write and command
// logs), src/mongo/db/update/document_diff_serialization.h (the $v:2 diff) and jstests that assert
// on oplog contents; a few have the shape older servers or MongoDB-compatible ones write, and say
// so.
package realdocs
