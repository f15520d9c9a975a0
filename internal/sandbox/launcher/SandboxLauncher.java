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
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
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
                MongoServer server = new MongoServer(new MemoryBackend());
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
}
