package bench.baseline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;

/**
 * One HTTP Stream Load: PUT to the FE, which answers 307 with the BE's address; the request is sent again to the
 * BE. The redirect is followed by hand because the FE's {@code Location} carries the credentials as userinfo and an
 * HTTP client does not resend {@code Authorization} to another host:port (apache/doris-flink-connector does the
 * same with its own redirect strategy). A load succeeds when the reply's {@code Status} is {@code Success} or
 * {@code Publish Timeout} (committed, visible later).
 */
final class StreamLoadClient {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Settings settings;
    private final HttpClient http;
    private final String auth;

    StreamLoadClient(Settings settings) {
        this.settings = settings;
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        String userPass = settings.dorisUser + ":" + settings.dorisPassword;
        this.auth = "Basic " + Base64.getEncoder().encodeToString(userPass.getBytes(StandardCharsets.UTF_8));
    }

    /** What Doris said about a successful load. */
    record Result(long loadedRows, long loadBytes) {}

    /** Loads {@code body} (JSON lines) under {@code label}; throws with Doris' message when the load failed. */
    Result load(String label, byte[] body) throws IOException, InterruptedException {
        URI uri = URI.create(settings.dorisFe + "/api/" + settings.dorisDb + "/" + settings.dorisTable + "/_stream_load");
        for (int hop = 0; hop < 3; hop++) {
            HttpResponse<String> resp =
                    http.send(request(uri, label, body, hop == 0), HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() == 307) {
                String location = resp.headers().firstValue("Location").orElse(null);
                if (location == null) {
                    throw new IOException("Stream Load " + label + ": 307 without Location from " + uri);
                }
                uri = withoutUserInfo(URI.create(location));
                continue;
            }
            if (resp.statusCode() != 200) {
                throw new IOException("Stream Load " + label + ": HTTP " + resp.statusCode() + ": " + resp.body());
            }
            JsonNode reply = JSON.readTree(resp.body());
            String status = reply.path("Status").asText(reply.path("status").asText(""));
            if (status.equals("Success") || status.equals("Publish Timeout")) {
                return new Result(reply.path("NumberLoadedRows").asLong(), reply.path("LoadBytes").asLong(body.length));
            }
            throw new IOException("Stream Load " + label + ": " + status + ": "
                    + reply.path("Message").asText(reply.path("msg").asText(resp.body())));
        }
        throw new IOException("Stream Load " + label + ": too many redirects");
    }

    /**
     * The FE refuses a load without {@code Expect: 100-continue} and answers 307 before any body byte moves. The BE
     * does not need it, and the JDK's client (17) waits past its timeout when a BE answers an expect-continue
     * request with a final reply before the body (a refused label or table), so the BE gets the body at once.
     */
    private HttpRequest request(URI uri, String label, byte[] body, boolean toFe) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri)
                .timeout(Duration.ofSeconds(60))
                .expectContinue(toFe)
                .header("Authorization", auth)
                .header("label", label)
                .header("format", "json")
                .header("read_json_by_line", "true")
                .PUT(HttpRequest.BodyPublishers.ofByteArray(body));
        return b.build();
    }

    private static URI withoutUserInfo(URI u) {
        String query = u.getRawQuery() == null ? "" : "?" + u.getRawQuery();
        int port = u.getPort();
        return URI.create(u.getScheme() + "://" + u.getHost() + (port < 0 ? "" : ":" + port) + u.getRawPath() + query);
    }
}
