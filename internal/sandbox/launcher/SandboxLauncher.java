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
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
                MongoServer server = new MongoServer(new HoleFreeOplogBackend());
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

    // Workaround mongoJavaServerOplogHoles: mongo-java-server takes an oplog entry's ts from a
    // counter and then adds the entry to local.oplog.rs in a second step, so two concurrent writes
    // can become visible out of ts order (ts 6 before ts 5). A reader that resumes after 6 would
    // then never see 5. Real MongoDB never shows such a hole to oplog readers (its oplog visibility
    // point), and fleetsync's oplog reader relies on that, as every oplog tailer does. Serialising
    // the sandbox's oplog writes gives it the same guarantee.
    static final class HoleFreeOplogBackend extends MemoryBackend {
        @Override
        protected Oplog createOplog() {
            return new SerializedOplog(this, super.createOplog());
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
