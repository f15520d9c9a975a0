// SandboxLauncher hosts mongo-java-server instances for fleetsync's sandbox and tests.
//
// One JVM serves any number of in-memory servers, so a test binary pays the JVM start once and still
// gives every test fresh, private servers. It is driven by line commands on stdin and answers one line
// on stdout per command:
//
//   start <port> <oplog:true|false>   ->  ok <port>           (port 0 picks a free port on 127.0.0.1)
//   stop <port>                       ->  ok stopped <port>
//   anything that fails               ->  err <one-line reason>
//
// When stdin reaches end-of-file the launcher stops every server and exits. The Go side holds the write
// end of that pipe, so the JVM dies with its parent, also when the parent is killed with SIGKILL and has
// no chance to clean up.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.ArrayFilters;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CollectionUtils;
import de.bwaldvogel.mongo.backend.Constants;
import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.DatabaseResolver;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.IndexNotFoundException;
import de.bwaldvogel.mongo.exception.InvalidOptionsException;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.CollectionBackedOplog;
import de.bwaldvogel.mongo.oplog.NoopOplog;
import de.bwaldvogel.mongo.oplog.Oplog;
import io.netty.channel.Channel;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

public final class SandboxLauncher {
    private static final Map<Integer, MongoServer> servers = new ConcurrentHashMap<>();

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String reply;
            try {
                reply = handle(line.trim().split("\\s+"));
            } catch (Exception e) {
                reply = "err " + String.valueOf(e.getMessage()).replace('\n', ' ');
            }
            System.out.println(reply);
            System.out.flush();
        }
        for (MongoServer s : servers.values()) {
            s.shutdownNow();
        }
        System.exit(0);
    }

    private static String handle(String[] cmd) {
        switch (cmd[0]) {
            case "start": {
                int port = Integer.parseInt(cmd[1]);
                MongoServer server = new MongoServer(new SandboxBackend());
                if (Boolean.parseBoolean(cmd[2])) {
                    server.enableOplog();
                }
                server.bind(new InetSocketAddress("127.0.0.1", port));
                int bound = server.getLocalAddress().getPort();
                servers.put(bound, server);
                return "ok " + bound;
            }
            case "stop": {
                int port = Integer.parseInt(cmd[1]);
                MongoServer server = servers.remove(port);
                if (server == null) {
                    return "err no server on port " + port;
                }
                server.shutdownNow();
                return "ok stopped " + port;
            }
            default:
                return "err unknown command " + cmd[0];
        }
    }

    // SandboxBackend is mongo-java-server's in-memory backend with the workarounds below.
    static final class SandboxBackend extends MemoryBackend {
        // Workaround mongoJavaServerOplogHoles: mongo-java-server takes an oplog entry's ts from a
        // counter and then adds the entry to local.oplog.rs in a second step, so two concurrent writes
        // can become visible out of ts order (ts 6 before ts 5). A reader that resumes after 6 would
        // then never see 5. Real MongoDB never shows such a hole to oplog readers (its oplog visibility
        // point), and fleetsync's oplog reader relies on that, as every oplog tailer does. Serialising
        // the sandbox's oplog writes gives it the same guarantee. SerializedOplog also writes the
        // DDL entries of mongoJavaServerLogsNoDDL and the UUIDs of mongoJavaServerLogsOneUuid.
        @Override
        protected Oplog createOplog() {
            return new SerializedOplog(this, super.createOplog());
        }

        // Workaround mongoJavaServerHasNoSessions: mongo-java-server answers isMaster/hello without
        // logicalSessionTimeoutMinutes, so drivers treat it as a server without sessions: they refuse
        // an explicit session ("current topology does not support sessions") and never send a
        // readConcern's afterClusterTime. Every MongoDB fleetsync syncs (replica sets and mongos, 4.4+)
        // has sessions, and fleetsync's source reads are causally consistent sessions advanced to the
        // sync's start time. The server ignores the lsid that drivers then attach to commands, and
        // accepts (without enforcing) afterClusterTime, which is all a test of the commands sent
        // needs; sessions are never more than that here (no transactions, no retryable writes on a
        // standalone).
        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if (command.equalsIgnoreCase("configureFailPoint")) {
                return failCommand.configure(databaseName, query);
            }
            if (command.equalsIgnoreCase("sandboxTruncateOplog") && "admin".equals(databaseName) && ddlLog() != null) {
                Document reply = new Document("removed", ddlLog().truncate((BsonTimestamp) query.get("before")));
                Utils.markOkay(reply);
                return reply;
            }
            Document failure = failCommand.trip(channel, databaseName, command, query);
            if (failure != null) {
                return failure;
            }
            // Workaround mongoJavaServerLogsNoDDL for the two DDL commands the server runs at the
            // backend rather than in a database (see the methods).
            if (command.equalsIgnoreCase("renameCollection") && "admin".equals(databaseName)) {
                Document renamed = renameWithinDatabase(query);
                if (renamed != null) {
                    return renamed;
                }
            }
            if (command.equalsIgnoreCase("dropDatabase")) {
                return dropDatabaseLogged(channel, databaseName, command, query);
            }
            Document reply = super.handleCommand(channel, databaseName, command, query);
            if (reply != null && (command.equalsIgnoreCase("isMaster") || command.equalsIgnoreCase("hello"))) {
                reply.put("logicalSessionTimeoutMinutes", SESSION_TIMEOUT_MINUTES);
            }
            return reply;
        }

        // MongoDB's default localLogicalSessionTimeoutMinutes.
        private static final int SESSION_TIMEOUT_MINUTES = 30;

        // Fault injection sandboxFailCommand (see FailCommand).
        private final FailCommand failCommand = new FailCommand();

        // Workarounds mongoJavaServerKeepsFieldOrderOnReplace (see ReplaceAsGivenCollection),
        // mongoJavaServerDropsIndexAcrossCollections and mongoJavaServerLogsNoDDL (see SandboxDatabase).
        @Override
        public MemoryDatabase openOrCreateDatabase(String databaseName) {
            return new SandboxDatabase(databaseName, getCursorRegistry(), this);
        }

        // ddlLog is the oplog DDL entries are written to, or null when the server keeps no oplog.
        SerializedOplog ddlLog() {
            return oplog instanceof SerializedOplog ? (SerializedOplog) oplog : null;
        }

        // Workaround mongoJavaServerLogsNoDDL, renameCollection: mongo-java-server renames without
        // an oplog entry, and when the rename replaces a collection (dropTarget) it logs that
        // collection's drop instead. MongoDB logs one entry on the database's $cmd,
        // {renameCollection: "db.from", to: "db.to", stayTemp: false}, with the renamed collection's
        // UUID as ui (kept by the rename), and, when a collection was replaced, dropTarget: its UUID
        // and o2: {numRecords}. fleetsync's applier replays renames from that entry. A rename within
        // one database is done here (the server's own steps: drop the target, move the collection)
        // and logged as MongoDB logs it. Renames across databases, and every rename the server
        // refuses (missing source, existing target without dropTarget), stay the server's, with
        // its errors and without an entry (docs/test-servers.md).
        private Document renameWithinDatabase(Document query) {
            String from = String.valueOf(query.get("renameCollection"));
            String to = String.valueOf(query.get("to"));
            String db = Utils.getDatabaseNameFromFullName(from);
            if (from.equals(to) || !db.equals(Utils.getDatabaseNameFromFullName(to)) || !listDatabaseNames().contains(db)) {
                return null;
            }
            MongoDatabase database = resolveDatabase(db);
            String toName = Utils.getCollectionNameFromFullName(to);
            synchronized (database) {
                MongoCollection<?> source = database.resolveCollection(Utils.getCollectionNameFromFullName(from), false);
                MongoCollection<?> target = database.resolveCollection(toName, false);
                if (source == null || (target != null && !Utils.isTrue(query.get("dropTarget")))) {
                    return null;
                }
                Document o = new Document("renameCollection", from).append("to", to).append("stayTemp", Boolean.FALSE);
                Document o2 = null;
                if (target != null) {
                    o.append("dropTarget", target.getUuid());
                    o2 = new Document("numRecords", Integer.valueOf(target.count()));
                    database.dropCollection(toName, NoopOplog.get()); // part of the rename's entry
                }
                database.moveCollection(database, source, toName);
                SerializedOplog log = ddlLog();
                if (log != null) {
                    log.logCommand(db, source.getUuid(), o, o2);
                }
            }
            Document reply = new Document();
            Utils.markOkay(reply);
            return reply;
        }

        // Workaround mongoJavaServerLogsNoDDL, dropDatabase: mongo-java-server logs a drop per
        // collection and nothing for the database (and drops of its own system.indexes and
        // system.namespaces, which SandboxDatabase.dropCollection leaves out). MongoDB (4.2+) logs
        // the drops, then {dropDatabase: 1} on the database's $cmd, without ui; fleetsync's applier
        // drops the database on that entry. A database that holds no collection logs nothing, as on
        // MongoDB, where it does not exist.
        private Document dropDatabaseLogged(Channel channel, String databaseName, String command, Document query) {
            boolean exists = !"local".equals(databaseName) && listDatabaseNames().contains(databaseName)
                && !((SandboxDatabase) resolveDatabase(databaseName)).userCollectionNames(channel).isEmpty();
            Document reply = super.handleCommand(channel, databaseName, command, query);
            SerializedOplog log = ddlLog();
            if (exists && log != null) {
                log.logCommand(databaseName, null, new Document("dropDatabase", Integer.valueOf(1)), null);
            }
            return reply;
        }
    }

    // SandboxDatabase is the in-memory backend's database with the workarounds below.
    static final class SandboxDatabase extends MemoryDatabase {
        private final SandboxBackend backend;

        SandboxDatabase(String databaseName, CursorRegistry cursorRegistry, SandboxBackend backend) {
            super(databaseName, cursorRegistry); // opens system.namespaces: this.backend is still null
            this.backend = backend;
        }

        // Workaround mongoJavaServerKeepsFieldOrderOnReplace, see ReplaceAsGivenCollection.
        @Override
        protected MemoryCollection openOrCreateCollection(String collectionName, CollectionOptions options) {
            MemoryCollection collection = new ReplaceAsGivenCollection(this, collectionName, options, cursorRegistry);
            if (uuids != null) { // null while the server's constructor opens system.namespaces
                uuids.put(collectionName, collection.getUuid());
            }
            return collection;
        }

        // uuids maps the name of each collection the database holds to its UUID (workaround
        // mongoJavaServerLogsOneUuid). SerializedOplog reads it while a write holds its collection's
        // lock, so it must not take the database's lock, as resolveCollection does: a rename or an
        // index drop holds that one and then takes a collection's.
        private final Map<String, UUID> uuids = new ConcurrentHashMap<>();

        UUID uuidOf(String collectionName) {
            return uuids.get(collectionName);
        }

        @Override
        public void moveCollection(MongoDatabase oldDatabase, MongoCollection<?> collection, String newCollectionName) {
            super.moveCollection(oldDatabase, collection, newCollectionName);
            uuids.put(newCollectionName, collection.getUuid()); // a rename keeps the UUID
        }

        @Override
        public void unregisterCollection(String collectionName) {
            uuids.remove(collectionName);
            super.unregisterCollection(collectionName);
        }

        // Workaround mongoJavaServerDropsIndexAcrossCollections: mongo-java-server keeps the index
        // descriptions of all of a database's collections in one catalog (system.indexes, with the
        // collection in "ns"), which listIndexes and drop read. Its dropIndexes
        // (AbstractMongoDatabase.dropIndexes) drops the index from the named collection but then
        // deletes the catalog entries matching {name} alone, so dropping email_1 from crm.dupes also
        // unlists email_1 of crm.people (whose index keeps working, and whose drop then fails on the
        // index it no longer lists). With "*" it walks the catalog of the whole database, dropping
        // from the named collection every index name any collection has: it fails on a name the
        // named collection lacks, after unlisting other collections' indexes. It also drops the _id
        // index when asked to, by name or key pattern. MongoDB drops only the named collection's
        // indexes, and never its _id index; fleetsync's commit rebuilds same-named indexes collection
        // by collection.
        //
        // dropIndexes by name, by key pattern, by a list of names and "*" is therefore done here,
        // each catalog entry looked up and deleted with its collection's ns. Dropping a collection
        // (drop, dropDatabase) needs nothing: the server finds its catalog entries by ns.
        @Override
        public Document handleCommand(Channel channel, String command, Document query, DatabaseResolver databaseResolver, Oplog oplog) {
            if (command.equalsIgnoreCase("find") && query.containsKey("collectionUUID")) {
                Document mismatch = collectionUUIDMismatch(String.valueOf(query.get(command)), query.get("collectionUUID"));
                if (mismatch != null) {
                    return mismatch;
                }
            }
            if (command.equalsIgnoreCase("create")) {
                return createLogged(channel, command, query, databaseResolver, oplog);
            }
            if (command.equalsIgnoreCase("createIndexes")) {
                return createIndexesLogged(channel, command, query, databaseResolver, oplog);
            }
            if (command.equalsIgnoreCase("listCollections")) {
                return withUuids(super.handleCommand(channel, command, query, databaseResolver, oplog));
            }
            Object index = query.get("index");
            if (!command.equalsIgnoreCase("dropIndexes") || !(index instanceof String || index instanceof Document || index instanceof List)) {
                return super.handleCommand(channel, command, query, databaseResolver, oplog);
            }
            clearLastStatus(channel);
            dropIndexes(String.valueOf(query.get(command)), index);
            Document response = new Document();
            Utils.markOkay(response);
            return response;
        }

        // Workaround mongoJavaServerLogsNoDDL: mongo-java-server's oplog has drops of collections
        // and writes only. MongoDB logs every DDL command as a command entry (op "c", ns
        // "<db>.$cmd", ui: the collection's UUID), and fleetsync's applier replays them from there:
        // create (explicit, or implicit on a first write or index), createIndexes, dropIndexes,
        // renameCollection and dropDatabase. The sandbox logs them here and in SandboxBackend, in the
        // format MongoDB 5.0/6.0 writes (internal/changeevent/realdocs/oplog.go), through
        // SerializedOplog, so they take their place in ts order like any other entry. Nothing is
        // logged for the local database (never replicated) or the server's own system.namespaces
        // and system.indexes. An index build is logged as createIndexes also on a collection that
        // holds documents, where MongoDB 4.4+ logs startIndexBuild and commitIndexBuild (read as
        // the same event by fleetsync; tested on real documents).
        private boolean logsDDL(String collectionName) {
            return backend != null && backend.ddlLog() != null && !"local".equals(databaseName)
                && !collectionName.startsWith("system.");
        }

        // An explicit create: {create: coll, <options as given>, idIndex}.
        private Document createLogged(Channel channel, String command, Document query, DatabaseResolver databaseResolver, Oplog oplog) {
            Document reply = super.handleCommand(channel, command, query, databaseResolver, oplog);
            String name = String.valueOf(query.get(command));
            MongoCollection<Integer> created = resolveCollection(name, false);
            if (created != null && logsDDL(name)) {
                Document o = new Document("create", name);
                for (Map.Entry<String, Object> e : query.entrySet()) {
                    if (!e.getKey().equals(command) && !e.getKey().equals("idIndex") && !GENERIC_ARGUMENTS.contains(e.getKey())) {
                        o.append(e.getKey(), e.getValue());
                    }
                }
                o.append("idIndex", query.containsKey("idIndex") ? query.get("idIndex") : idIndexSpec());
                backend.ddlLog().logCommand(databaseName, created.getUuid(), o, null);
            }
            return reply;
        }

        // An implicit create (a first insert, upsert, findAndModify or index): {create: coll, idIndex}.
        // The server creates collections through here, under the database's lock, so the entry comes
        // before the write's own.
        @Override
        protected synchronized MongoCollection<Integer> resolveOrCreateCollection(String collectionName) {
            MongoCollection<Integer> existing = resolveCollection(collectionName, false);
            if (existing != null) {
                return existing;
            }
            MongoCollection<Integer> created = super.resolveOrCreateCollection(collectionName);
            if (logsDDL(collectionName)) {
                backend.ddlLog().logCommand(databaseName, created.getUuid(),
                    new Document("create", collectionName).append("idIndex", idIndexSpec()), null);
            }
            return created;
        }

        private static Document idIndexSpec() {
            return new Document("v", Integer.valueOf(2)).append("key", new Document("_id", Integer.valueOf(1))).append("name", "_id_");
        }

        // MongoDB's generic command arguments, which drivers add and which are no collection option.
        private static final Set<String> GENERIC_ARGUMENTS = Set.of("$db", "lsid", "txnNumber", "autocommit",
            "startTransaction", "$clusterTime", "$readPreference", "readConcern", "writeConcern", "maxTimeMS",
            "comment", "apiVersion", "apiStrict", "apiDeprecationErrors", "$audit", "$client");

        // createIndexes: one entry per index the command added, {createIndexes: coll, v, key, name,
        // <options>}, in the command's order; an index that already existed adds nothing.
        private Document createIndexesLogged(Channel channel, String command, Document query, DatabaseResolver databaseResolver, Oplog oplog) {
            String name = String.valueOf(query.get(command));
            Set<String> before = new LinkedHashSet<>(indexDescriptions(name).keySet());
            Document reply = super.handleCommand(channel, command, query, databaseResolver, oplog);
            MongoCollection<Integer> collection = resolveCollection(name, false);
            if (collection == null || !logsDDL(name) || !(query.get("indexes") instanceof List)) {
                return reply;
            }
            Map<String, Document> after = indexDescriptions(name);
            for (Object spec : (List<?>) query.get("indexes")) {
                Object indexName = spec instanceof Document ? ((Document) spec).get("name") : null;
                Document description = after.get(indexName);
                if (description == null || before.contains(indexName)) {
                    continue;
                }
                Document o = new Document("createIndexes", name);
                o.putAll(indexSpec(description));
                backend.ddlLog().logCommand(databaseName, collection.getUuid(), o, null);
            }
            return reply;
        }

        // indexDescriptions returns the catalog's descriptions of a collection's indexes by name.
        private Map<String, Document> indexDescriptions(String collectionName) {
            Map<String, Document> out = new java.util.LinkedHashMap<>();
            MongoCollection<Integer> catalog = indexes.get();
            if (catalog != null) {
                for (Document d : catalog.handleQuery(new Document("ns", databaseName + "." + collectionName))) {
                    out.put(String.valueOf(d.get("name")), d);
                }
            }
            return out;
        }

        // indexSpec is an index as MongoDB lists and logs it: v, key, name, then its options; the
        // catalog's ns is the server's own.
        private static Document indexSpec(Document description) {
            Document spec = new Document("v", description.getOrDefault("v", Integer.valueOf(2)))
                .append("key", description.get("key")).append("name", description.get("name"));
            for (Map.Entry<String, Object> e : description.entrySet()) {
                if (!spec.containsKey(e.getKey()) && !e.getKey().equals("ns")) {
                    spec.append(e.getKey(), e.getValue());
                }
            }
            return spec;
        }

        // Workaround mongoJavaServerLogsNoDDL, drop: the server logs a collection's drop without its
        // UUID (every entry of its oplog has the same ui) and also drops of its own system
        // collections. MongoDB logs {drop: coll} with the collection's UUID and o2: {numRecords}.
        @Override
        public void dropCollection(String collectionName, Oplog oplog) {
            MongoCollection<Integer> collection = resolveCollection(collectionName, true);
            UUID uuid = collection.getUuid();
            int numRecords = collection.count();
            super.dropCollection(collectionName, NoopOplog.get());
            if (oplog instanceof SerializedOplog && logsDDL(collectionName)) {
                ((SerializedOplog) oplog).logCommand(databaseName, uuid, new Document("drop", collectionName),
                    new Document("numRecords", Integer.valueOf(numRecords)));
            }
        }

        // Workaround mongoJavaServerIgnoresCollectionUUID: mongo-java-server runs a find whatever
        // its collectionUUID says. MongoDB (6.0+) runs it only when the named collection has that
        // UUID, and otherwise answers CollectionUUIDMismatch (361) with db, collectionUUID,
        // expectedCollection (the name asked for) and actualCollection: the name of the collection
        // that has the UUID in this database, or null when none has (dropped, or dropped and
        // created again under the name). fleetsync's copy reads a partition by its collection's
        // UUID and follows a rename, or ends at a drop, on that answer. Only find, the command the
        // copy sends, is checked here. The reply's fields and their order are MongoDB's
        // (CollectionUUIDMismatchInfo::serialize after ok, errmsg, code, codeName).
        private Document collectionUUIDMismatch(String collectionName, Object uuid) {
            if (uuid != null && uuid.equals(uuids.get(collectionName))) {
                return null;
            }
            String actual = null;
            for (Map.Entry<String, UUID> e : uuids.entrySet()) {
                if (e.getValue().equals(uuid)) {
                    actual = e.getKey();
                }
            }
            return new Document("ok", Double.valueOf(0))
                .append("errmsg", "Collection UUID does not match that specified")
                .append("code", Integer.valueOf(361))
                .append("codeName", "CollectionUUIDMismatch")
                .append("db", getDatabaseName())
                .append("collectionUUID", uuid)
                .append("expectedCollection", collectionName)
                .append("actualCollection", actual);
        }

        // userCollectionNames lists the collections MongoDB would have: not the server's own
        // system.namespaces and system.indexes.
        List<String> userCollectionNames(Channel channel) {
            List<String> names = new ArrayList<>();
            Document reply = super.handleCommand(channel, "listCollections", new Document("listCollections", 1), null, NoopOplog.get());
            for (Object d : (List<?>) ((Document) reply.get("cursor")).get("firstBatch")) {
                names.add(String.valueOf(((Document) d).get("name")));
            }
            return names;
        }

        // Workaround mongoJavaServerListsNoUUIDs: mongo-java-server's listCollections reports info:
        // {readOnly: false} without the collection's UUID, though every collection has one
        // (MongoCollection.getUuid, random at creation, kept by a rename). MongoDB reports info:
        // {readOnly: false, uuid: UUID(...)}, the ui of the collection's oplog entries; a reader
        // tells a collection from a re-created one of the same name by it. The sandbox adds it,
        // and logs the same UUID as ui (SerializedOplog).
        private Document withUuids(Document reply) {
            Object cursor = reply == null ? null : reply.get("cursor");
            if (!(cursor instanceof Document) || !(((Document) cursor).get("firstBatch") instanceof List)) {
                return reply;
            }
            for (Object entry : (List<?>) ((Document) cursor).get("firstBatch")) {
                if (!(entry instanceof Document) || !(((Document) entry).get("info") instanceof Document)) {
                    continue;
                }
                MongoCollection<Integer> collection = resolveCollection(String.valueOf(((Document) entry).get("name")), false);
                if (collection != null) {
                    ((Document) ((Document) entry).get("info")).put("uuid", collection.getUuid());
                }
            }
            return reply;
        }

        // Holds the database's lock, which the server takes to add an index, so the catalog and the
        // collection's indexes change together.
        private synchronized void dropIndexes(String collectionName, Object index) {
            MongoCollection<Integer> collection = resolveCollection(collectionName, false);
            MongoCollection<Integer> catalog = indexes.get();
            if (collection == null || catalog == null) {
                return; // as the server answers for a collection that does not exist
            }
            Document ofCollection = new Document("ns", collection.getFullName());
            List<String> names = new ArrayList<>();
            if ("*".equals(index)) {
                for (Document description : catalog.handleQuery(ofCollection)) {
                    if (!isPrimaryKeyIndex((Document) description.get("key"))) {
                        names.add((String) description.get("name"));
                    }
                }
            } else if (index instanceof String) {
                if (Constants.PRIMARY_KEY_INDEX_NAME.equals(index)) {
                    throw new InvalidOptionsException("cannot drop _id index");
                }
                names.add((String) index);
            } else if (index instanceof List) {
                // A list of names (4.4+): all of them or none.
                for (Object name : (List<?>) index) {
                    if (Constants.PRIMARY_KEY_INDEX_NAME.equals(name)) {
                        throw new InvalidOptionsException("cannot drop _id index");
                    }
                    if (!catalog.handleQuery(ofCollection.clone().append("name", name)).iterator().hasNext()) {
                        throw new IndexNotFoundException("index not found with name [" + name + "]");
                    }
                    names.add(String.valueOf(name));
                }
            } else {
                Document keys = (Document) index;
                if (isPrimaryKeyIndex(keys)) {
                    throw new InvalidOptionsException("cannot drop _id index");
                }
                Document description = CollectionUtils.getSingleElement(
                    catalog.handleQuery(ofCollection.clone().append("key", keys)), () -> new IndexNotFoundException(keys));
                names.add((String) description.get("name"));
            }
            Map<String, Document> descriptions = indexDescriptions(collectionName);
            for (String name : names) {
                dropIndex(collection, name); // IndexNotFound when the collection has no such index
                catalog.deleteDocuments(ofCollection.clone().append("name", name), -1);
                // Workaround mongoJavaServerLogsNoDDL, dropIndexes: MongoDB logs one entry per
                // dropped index, {dropIndexes: coll, index: name}, with o2 the dropped index's spec.
                if (logsDDL(collectionName) && descriptions.containsKey(name)) {
                    backend.ddlLog().logCommand(databaseName, collection.getUuid(),
                        new Document("dropIndexes", collectionName).append("index", name), indexSpec(descriptions.get(name)));
                }
            }
        }
    }

    // Workaround mongoJavaServerKeepsFieldOrderOnReplace: mongo-java-server computes a replaced
    // document right (_id, then the replacement's fields in their order) but copies it into the
    // stored document with put (AbstractMongoCollection.updateDocument), so the fields the old
    // document had keep their old place. A replacement that only reorders fields then changes
    // nothing, and is neither counted as modified nor logged. MongoDB stores a replacement as given,
    // with _id first; one that only reorders fields modifies the document and is logged. fleetsync's
    // verifier compares field order, so the sandbox must keep it as MongoDB does.
    //
    // Every replacement, from the update command (replaceOne, bulk ReplaceOne, with or without
    // upsert) or from findAndModify, is left to the server, and the document it replaced is then put
    // in the replacement's order. Only the order changes: the server's checks (immutable _id, unique
    // indexes), index maintenance and oplog entry stay its own. A replace-upsert that inserts is
    // already stored as given. Updates with operators are not touched: there the server keeps the
    // stored order and appends new fields, as MongoDB does.
    static final class ReplaceAsGivenCollection extends MemoryCollection {
        ReplaceAsGivenCollection(MongoDatabase database, String collectionName, CollectionOptions options, CursorRegistry cursorRegistry) {
            super(database, collectionName, options, cursorRegistry);
        }

        // The server holds the collection's lock for each update; this holds it from finding the
        // document the server will replace until that document is reordered.
        @Override
        public synchronized Document updateDocuments(Document selector, Document update, ArrayFilters arrayFilters,
                                                     boolean isMulti, boolean isUpsert, Oplog oplog) {
            if (isMulti || !isReplacement(update)) {
                return super.updateDocuments(selector, update, arrayFilters, isMulti, isUpsert, oplog);
            }
            // The document the server replaces: its first match, found as the server finds it.
            Document target = first(queryDocuments(selector, null, 0, 1, 0, null));
            Document result = super.updateDocuments(selector, update, arrayFilters, false, isUpsert, oplog);
            if (target == null || !storeAsGiven(target, update)) {
                return result;
            }
            if (((Integer) result.get("nModified")).intValue() == 0) {
                // Only the order changed, which the server did not see: count and log it as MongoDB does.
                result.put("nModified", Integer.valueOf(1));
                oplog.handleUpdate(getFullName(), selector, update, List.of(target.get(getIdField())));
            }
            return result;
        }

        @Override
        public synchronized Document findAndModify(Document query) {
            Object update = query.get("update");
            if (Utils.isTrue(query.get("remove")) || !(update instanceof Document) || !isReplacement((Document) update)) {
                return super.findAndModify(query);
            }
            // The document the server replaces, found with the query the server builds from the command.
            Document find = new Document("query", query.containsKey("query") ? query.get("query") : new Document());
            if (query.containsKey("sort")) {
                find.put("orderby", query.get("sort"));
            }
            Document target = first(handleQuery(find, 0, 1));
            Document result = super.findAndModify(query);
            if (target != null && storeAsGiven(target, (Document) update)
                && Utils.isTrue(query.get("new")) && result.get("value") instanceof Document) {
                // The reply holds the stored document, or a projection of it taken before the reordering.
                putInOrder((Document) result.get("value"), target.keySet());
            }
            return result;
        }

        // A replacement has no update operators (the server refuses a mix of both).
        private static boolean isReplacement(Document update) {
            for (String key : update.keySet()) {
                if (key.startsWith("$")) {
                    return false;
                }
            }
            return true;
        }

        private static Document first(Iterable<Document> documents) {
            Iterator<Document> it = documents.iterator();
            return it.hasNext() ? it.next() : null;
        }

        // storeAsGiven puts the stored document the server has just replaced by replacement into the
        // replacement's order, _id first, and says whether any field moved. A document whose fields
        // are not the replacement's is left alone.
        private boolean storeAsGiven(Document stored, Document replacement) {
            String idField = getIdField();
            if (idField == null) {
                return false;
            }
            Set<String> given = new LinkedHashSet<>();
            given.add(idField);
            given.addAll(replacement.keySet());
            return given.equals(stored.keySet()) && putInOrder(stored, given);
        }

        // putInOrder moves document's fields into the order of keys; fields keys lacks follow in their
        // own order. It says whether any field moved. Nested documents need no care: the server stores
        // the replacement's values themselves.
        private static boolean putInOrder(Document document, Set<String> keys) {
            Set<String> order = new LinkedHashSet<>();
            for (String key : keys) {
                if (document.containsKey(key)) {
                    order.add(key);
                }
            }
            order.addAll(document.keySet());
            if (new ArrayList<>(order).equals(new ArrayList<>(document.keySet()))) {
                return false;
            }
            Document reordered = new Document();
            for (String key : order) {
                reordered.put(key, document.get(key));
            }
            document.clear();
            document.putAll(reordered);
            return true;
        }
    }

    // Fault injection sandboxFailCommand: mongo-java-server has no configureFailPoint, which MongoDB
    // offers to tests (with enableTestCommands) to make chosen commands fail the way they do in a
    // failover or a shutdown. fleetsync's tests need exactly that on the wire: a copy must not give
    // up on a partition because a primary stepped down, and only a real reply with a real code and
    // labels, or a real dropped connection, proves the classification on the path the driver takes.
    // This implements MongoDB's failCommand fail point, in the subset the tests use, with MongoDB's
    // syntax, so the same test commands work against a mongod run with enableTestCommands:
    //
    //   {configureFailPoint: "failCommand", mode: "alwaysOn" | "off" | {times: N},
    //    data: {failCommands: ["insert", ...], errorCode: N, errorLabels: [...],
    //           closeConnection: bool, namespace: "db.coll"}}     (sent to the admin database)
    //
    // A matching command is not run: it answers {ok: 0, code, errmsg, errorLabels}, or its connection
    // is closed with no answer. configureFailPoint answers {ok: 1, count: <times the fail point fired
    // since it was last configured>}. One fail point per server, as in MongoDB; servers start without.
    static final class FailCommand {
        private Set<String> commands = Set.of();
        private String namespace;
        private int errorCode;
        private List<Object> errorLabels = List.of();
        private boolean closeConnection;
        private long remaining; // -1: always
        private long fired;

        synchronized Document configure(String databaseName, Document query) {
            if (!"admin".equals(databaseName)) {
                throw new MongoServerError(13, "Unauthorized", "configureFailPoint may only be run against the admin database.");
            }
            if (!"failCommand".equals(query.get("configureFailPoint"))) {
                throw new MongoServerError(2, "BadValue", "the sandbox has only the failCommand fail point");
            }
            Object mode = query.get("mode");
            long before = fired;
            fired = 0;
            if ("off".equals(mode)) {
                remaining = 0;
            } else if ("alwaysOn".equals(mode)) {
                remaining = -1;
            } else if (mode instanceof Document && ((Document) mode).get("times") instanceof Number) {
                remaining = ((Number) ((Document) mode).get("times")).longValue();
            } else {
                throw new MongoServerError(2, "BadValue", "mode must be \"alwaysOn\", \"off\" or {times: N}");
            }
            Document data = query.get("data") instanceof Document ? (Document) query.get("data") : new Document();
            Set<String> names = new LinkedHashSet<>();
            if (data.get("failCommands") instanceof List) {
                for (Object name : (List<?>) data.get("failCommands")) {
                    names.add(String.valueOf(name).toLowerCase());
                }
            }
            commands = names;
            namespace = data.get("namespace") instanceof String ? (String) data.get("namespace") : null;
            errorCode = data.get("errorCode") instanceof Number ? ((Number) data.get("errorCode")).intValue() : 0;
            errorLabels = data.get("errorLabels") instanceof List ? new ArrayList<>((List<?>) data.get("errorLabels")) : List.of();
            closeConnection = Utils.isTrue(data.get("closeConnection"));
            Document reply = new Document("count", before);
            Utils.markOkay(reply);
            return reply;
        }

        // trip returns the failure a command gets, or null when it runs as usual.
        synchronized Document trip(Channel channel, String databaseName, String command, Document query) {
            if (remaining == 0 || !commands.contains(command.toLowerCase())) {
                return null;
            }
            if (namespace != null && !namespace.equals(databaseName + "." + query.get(command))) {
                return null;
            }
            if (remaining > 0) {
                remaining--;
            }
            fired++;
            if (closeConnection) {
                channel.close();
            }
            Document reply = new Document("ok", 0.0);
            reply.put("errmsg", "Failing command via 'failCommand' failpoint");
            reply.put("code", errorCode);
            if (!errorLabels.isEmpty()) {
                reply.put("errorLabels", errorLabels);
            }
            return reply;
        }
    }

    // SerializedOplog is the sandbox's oplog (workaround mongoJavaServerOplogHoles, see
    // SandboxBackend.createOplog): every entry is made and added under one lock, so entries become
    // visible in ts order. It writes the entries itself, in the server's format for writes (ts, t, h,
    // v, op, ns, ui, wall, o, o2) and in MongoDB's for commands (logCommand), with ts from the
    // server's own oplog clock; the server's oplog (delegate) only serves change-stream cursors.
    //
    // Workaround mongoJavaServerLogsOneUuid: the server gives every entry the same ui, one UUID
    // per oplog. MongoDB's ui is the UUID of the collection written, the one listCollections
    // reports (mongoJavaServerListsNoUUIDs); here it is the collection's getUuid().
    static final class SerializedOplog implements Oplog {
        private final MongoBackend backend;
        private final Oplog delegate;
        private final MongoCollection<?> entries;
        private final Object clock;
        private final Method tick;
        private final Method instant;

        SerializedOplog(MongoBackend backend, Oplog delegate) {
            this.backend = backend;
            this.delegate = delegate;
            this.entries = backend.resolveDatabase("local").resolveCollection("oplog.rs", true);
            // The server's OplogClock is package-private: reached by reflection, so that the
            // times of the entries written here and of the server's change-stream cursors agree.
            try {
                Field f = CollectionBackedOplog.class.getDeclaredField("oplogClock");
                f.setAccessible(true);
                clock = f.get(delegate);
                tick = clock.getClass().getDeclaredMethod("incrementAndGet");
                tick.setAccessible(true);
                instant = clock.getClass().getDeclaredMethod("instant");
                instant.setAccessible(true);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("mongo-java-server's oplog clock moved: " + e, e);
            }
        }

        // Workaround mongoJavaServerLogsFailedInserts: mongo-java-server logs every document of an
        // insert command, also those the insert rejected (a duplicate key), so an oplog reader would
        // apply inserts that never happened. Only documents the collection now holds, exactly as
        // inserted, are logged. The check runs before taking the oplog lock, because updates and
        // deletes log while holding their collection's lock.
        @Override
        public void handleInsert(String namespace, List<Document> documents) {
            List<Document> stored = new ArrayList<>();
            for (Document d : documents) {
                if (isStored(namespace, d)) {
                    stored.add(d);
                }
            }
            if (stored.isEmpty() || isOplog(namespace)) {
                return;
            }
            UUID ui = uuidOf(namespace);
            synchronized (this) {
                for (Document d : stored) {
                    add(write("i", namespace, ui).append("o", d.cloneDeeply()));
                }
            }
        }

        private boolean isStored(String namespace, Document d) {
            int dot = namespace.indexOf('.');
            if (dot < 0 || namespace.startsWith("local.")) {
                return true;
            }
            MongoCollection<?> coll = backend.resolveDatabase(namespace.substring(0, dot)).resolveCollection(namespace.substring(dot + 1), false);
            if (coll == null) {
                return false;
            }
            for (Document found : coll.handleQuery(new Document("_id", d.get("_id")))) {
                return found.equals(d);
            }
            return false;
        }

        @Override
        public void handleUpdate(String namespace, Document selector, Document query, List<Object> modifiedIds) {
            if (isOplog(namespace)) {
                return;
            }
            UUID ui = uuidOf(namespace);
            synchronized (this) {
                for (Object id : modifiedIds) {
                    add(write("u", namespace, ui).append("o", query).append("o2", new Document("_id", id)));
                }
            }
        }

        @Override
        public void handleDelete(String namespace, Document query, List<Object> deletedIds) {
            if (isOplog(namespace)) {
                return;
            }
            UUID ui = uuidOf(namespace);
            synchronized (this) {
                for (Object id : deletedIds) {
                    add(write("d", namespace, ui).append("o", new Document("_id", id)));
                }
            }
        }

        // Drops are logged by SandboxDatabase.dropCollection, which knows the dropped collection's
        // UUID; the server calls this only after the collection is gone.
        @Override
        public void handleDropCollection(String namespace) {
        }

        // logCommand adds a command entry as MongoDB writes it: op "c" on "<db>.$cmd", ui (null for
        // a database's command), o, o2 when given, then ts, t, v, wall.
        synchronized void logCommand(String databaseName, UUID ui, Document o, Document o2) {
            Document entry = new Document("op", "c").append("ns", databaseName + ".$cmd");
            if (ui != null) {
                entry.append("ui", ui);
            }
            entry.append("o", o);
            if (o2 != null) {
                entry.append("o2", o2);
            }
            entry.append("ts", nextTs()).append("t", Long.valueOf(ELECTION_TERM)).append("v", Long.valueOf(2)).append("wall", now());
            add(entry);
        }

        // write starts a write's entry as the server does (CollectionBackedOplog.toOplogDocument).
        private Document write(String op, String namespace, UUID ui) {
            Document entry = new Document("ts", nextTs()).append("t", Long.valueOf(ELECTION_TERM)).append("h", Long.valueOf(0))
                .append("v", Long.valueOf(2)).append("op", op).append("ns", namespace);
            if (ui != null) {
                entry.append("ui", ui);
            }
            return entry.append("wall", now());
        }

        // Workaround mongoJavaServerOplogNeverTruncated: a test makes the oplog roll over by removing
        // its entries older than before. A plain delete would not do: the memory backend reuses a
        // removed document's slot for the next insert, so new entries would land before the kept
        // ones in natural order, which oplog readers take as ts order (the newest entry is
        // {$natural: -1}, as on a capped collection). So, under the oplog's lock, every entry is
        // removed, the free slots are put back in ascending order, and the kept entries added again
        // in order: they and every later entry then sit in ts order. Returns how many were removed.
        synchronized int truncate(BsonTimestamp before) {
            List<Document> kept = new ArrayList<>();
            int removed = 0;
            for (Document e : entries.queryAllAsStream().sorted((a, b) -> ((BsonTimestamp) a.get("ts")).compareTo((BsonTimestamp) b.get("ts"))).toList()) {
                if (((BsonTimestamp) e.get("ts")).compareTo(before) >= 0) {
                    kept.add(e);
                } else {
                    removed++;
                }
            }
            entries.deleteDocuments(new Document(), 0, NoopOplog.get());
            try {
                Field f = MemoryCollection.class.getDeclaredField("emptyPositions");
                f.setAccessible(true);
                @SuppressWarnings("unchecked")
                java.util.Queue<Integer> free = (java.util.Queue<Integer>) f.get(entries);
                List<Integer> slots = new ArrayList<>(free);
                slots.sort(null);
                free.clear();
                free.addAll(slots);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("mongo-java-server's memory collection moved: " + e, e);
            }
            for (Document e : kept) {
                entries.addDocument(e);
            }
            return removed;
        }

        // The server's (and a fresh replica set's) election term.
        private static final long ELECTION_TERM = 1;

        private void add(Document entry) {
            entries.addDocument(entry);
        }

        private boolean isOplog(String namespace) {
            return entries.getFullName().equals(namespace);
        }

        private UUID uuidOf(String namespace) {
            MongoDatabase db = backend.resolveDatabase(Utils.getDatabaseNameFromFullName(namespace));
            return db instanceof SandboxDatabase ? ((SandboxDatabase) db).uuidOf(Utils.getCollectionNameFromFullName(namespace)) : null;
        }

        private BsonTimestamp nextTs() {
            try {
                return (BsonTimestamp) tick.invoke(clock);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }

        private Instant now() {
            try {
                return (Instant) instant.invoke(clock);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public Cursor createCursor(Document changeStreamDocument, String namespace, Aggregation aggregation) {
            return delegate.createCursor(changeStreamDocument, namespace, aggregation);
        }
    }
}
