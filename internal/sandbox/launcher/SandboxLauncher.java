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
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.IndexNotFoundException;
import de.bwaldvogel.mongo.exception.InvalidOptionsException;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;
import io.netty.channel.Channel;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
        // the sandbox's oplog writes gives it the same guarantee.
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
            Document failure = failCommand.trip(channel, databaseName, command, query);
            if (failure != null) {
                return failure;
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

        // Workarounds mongoJavaServerKeepsFieldOrderOnReplace (see ReplaceAsGivenCollection) and
        // mongoJavaServerDropsIndexAcrossCollections (see SandboxDatabase).
        @Override
        public MemoryDatabase openOrCreateDatabase(String databaseName) {
            return new SandboxDatabase(databaseName, getCursorRegistry());
        }
    }

    // SandboxDatabase is the in-memory backend's database with the workarounds below.
    static final class SandboxDatabase extends MemoryDatabase {
        SandboxDatabase(String databaseName, CursorRegistry cursorRegistry) {
            super(databaseName, cursorRegistry);
        }

        // Workaround mongoJavaServerKeepsFieldOrderOnReplace, see ReplaceAsGivenCollection.
        @Override
        protected MemoryCollection openOrCreateCollection(String collectionName, CollectionOptions options) {
            return new ReplaceAsGivenCollection(this, collectionName, options, cursorRegistry);
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
        // dropIndexes by name, by key pattern and "*" is therefore done here, each catalog entry
        // looked up and deleted with its collection's ns. Dropping a collection (drop, dropDatabase)
        // needs nothing: the server finds its catalog entries by ns. Other forms of index (a list of
        // names) stay the server's.
        @Override
        public Document handleCommand(Channel channel, String command, Document query, DatabaseResolver databaseResolver, Oplog oplog) {
            Object index = query.get("index");
            if (!command.equalsIgnoreCase("dropIndexes") || !(index instanceof String || index instanceof Document)) {
                return super.handleCommand(channel, command, query, databaseResolver, oplog);
            }
            clearLastStatus(channel);
            dropIndexes(String.valueOf(query.get(command)), index);
            Document response = new Document();
            Utils.markOkay(response);
            return response;
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
            } else {
                Document keys = (Document) index;
                if (isPrimaryKeyIndex(keys)) {
                    throw new InvalidOptionsException("cannot drop _id index");
                }
                Document description = CollectionUtils.getSingleElement(
                    catalog.handleQuery(ofCollection.clone().append("key", keys)), () -> new IndexNotFoundException(keys));
                names.add((String) description.get("name"));
            }
            for (String name : names) {
                dropIndex(collection, name); // IndexNotFound when the collection has no such index
                catalog.deleteDocuments(ofCollection.clone().append("name", name), -1);
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

    static final class SerializedOplog implements Oplog {
        private final MongoBackend backend;
        private final Oplog delegate;

        SerializedOplog(MongoBackend backend, Oplog delegate) {
            this.backend = backend;
            this.delegate = delegate;
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
            if (stored.isEmpty()) {
                return;
            }
            synchronized (this) {
                delegate.handleInsert(namespace, stored);
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
        public synchronized void handleUpdate(String namespace, Document selector, Document query, List<Object> modifiedIds) {
            delegate.handleUpdate(namespace, selector, query, modifiedIds);
        }

        @Override
        public synchronized void handleDelete(String namespace, Document query, List<Object> deletedIds) {
            delegate.handleDelete(namespace, query, deletedIds);
        }

        @Override
        public synchronized void handleDropCollection(String namespace) {
            delegate.handleDropCollection(namespace);
        }

        @Override
        public Cursor createCursor(Document changeStreamDocument, String namespace, Aggregation aggregation) {
            return delegate.createCursor(changeStreamDocument, namespace, aggregation);
        }
    }
}
