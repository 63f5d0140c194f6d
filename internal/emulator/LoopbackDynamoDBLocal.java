// Starts DynamoDB Local listening on one address only (127.0.0.1 unless -Dcdp.bindHost says
// otherwise). DynamoDB Local's own ServerRunner binds Jetty to every interface and has no host
// option, so this does what ServerRunner.main does, then sets the host of Jetty's connectors
// before the server starts. Run in Java's single-file source mode by internal/emulator:
//
//	java -cp DynamoDBLocal.jar LoopbackDynamoDBLocal.java -inMemory -sharedDb -port 8000
import com.amazonaws.services.dynamodbv2.local.main.CommandLineInput;
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("cdp.bindHost", "127.0.0.1");
        if (!new CommandLineInput(args).init()) {
            return; // -help or -version was printed
        }
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field f = DynamoDBProxyServer.class.getDeclaredField("server");
        f.setAccessible(true);
        Server jetty = (Server) f.get(proxy);
        Connector[] connectors = jetty.getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local has no connector to bind");
        }
        for (Connector c : connectors) {
            ((ServerConnector) c).setHost(host);
        }
        proxy.start();
        System.out.println("DynamoDB Local bound to " + host);
    }
}
