package bench.baseline;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The job's settings, from the command line; serialisable so every operator gets a copy. */
final class Settings implements Serializable {
    private static final long serialVersionUID = 1L;

    String bootstrap = "127.0.0.1:9092";
    String topicPrefix = "bench";
    String group = "flink-baseline";
    String jdbcUrl = "jdbc:postgresql://127.0.0.1:5432/cdc2doris_bench";
    String pgUser = "cdc2doris";
    String pgPassword = "";
    int poolSize = 2;
    String mergeSql;
    /** How many `?` the merge query has (every `$1` became one). */
    int mergeSqlParameters;
    String resolveSql = "SELECT id FROM jobs WHERE client_id = ANY(?)";
    String dorisFe = "http://127.0.0.1:8030";
    String dorisDb = "job_analytics";
    String dorisTable = "merged_job_data";
    String dorisUser = "root";
    String dorisPassword = "";
    String sequenceColumn = "source_version";
    String labelPrefix = "flink_baseline";
    int batchRows = 100;
    long flushIntervalMs = 1000;
    int retries = 3;
    long retryBackoffMs = 1000;
    long checkpointIntervalMs = 5000;
    int parallelism = 2;
    String statsFile;

    /** The four topics of the job-analytics workload. */
    List<String> topics() {
        List<String> out = new ArrayList<>();
        for (String t : List.of("jobs", "job_activity", "clients_to_exclude", "standard_revenue")) {
            out.add(topicPrefix + ".public." + t);
        }
        return out;
    }

    /** The key field of a table (the job-analytics key rules), or null for a table the job does not know. */
    String keyField(String table) {
        return Map.of("jobs", "id", "job_activity", "job_id", "standard_revenue", "job_id",
                "clients_to_exclude", "client_id").get(table);
    }

    /** True when a table's key is a client id that the resolve query turns into job ids. */
    boolean isResolved(String table) {
        return "clients_to_exclude".equals(table);
    }

    HikariDataSource newPool(String name) {
        HikariConfig c = new HikariConfig();
        c.setPoolName(name);
        c.setJdbcUrl(jdbcUrl);
        c.setUsername(pgUser);
        c.setPassword(pgPassword);
        c.setMaximumPoolSize(poolSize);
        c.setMinimumIdle(1);
        c.setConnectionTimeout(Duration.ofSeconds(30).toMillis());
        return new HikariDataSource(c);
    }

    /** Reads a merge query written for cdc2doris ({@code $1} is a bigint[] of ids) as JDBC SQL. */
    static String mergeSqlFrom(Path file) throws IOException {
        StringBuilder sql = new StringBuilder();
        for (String line : Files.readAllLines(file)) {
            if (line.strip().startsWith("--")) {
                continue;
            }
            sql.append(line.replace("$1", "?")).append('\n');
        }
        return sql.toString().strip().replaceAll(";$", "");
    }

    static Settings parse(String[] args) throws IOException {
        Settings s = new Settings();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                throw new IllegalArgumentException(USAGE);
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value\n" + USAGE);
            }
            String v = args[++i];
            switch (a) {
                case "--bootstrap" -> s.bootstrap = v;
                case "--topic-prefix" -> s.topicPrefix = v;
                case "--group" -> s.group = v;
                case "--jdbc-url" -> s.jdbcUrl = v;
                case "--pg-user" -> s.pgUser = v;
                case "--pg-password-env" -> s.pgPassword = env(v);
                case "--pool-size" -> s.poolSize = Integer.parseInt(v);
                case "--merge-file" -> {
                    s.mergeSql = mergeSqlFrom(Path.of(v));
                    s.mergeSqlParameters = s.mergeSql.split("\\?", -1).length - 1;
                }
                case "--resolve-query" -> s.resolveSql = v;
                case "--doris-fe" -> s.dorisFe = v.replaceAll("/+$", "");
                case "--doris-db" -> s.dorisDb = v;
                case "--doris-table" -> s.dorisTable = v;
                case "--doris-user" -> s.dorisUser = v;
                case "--doris-password-env" -> s.dorisPassword = env(v);
                case "--sequence-column" -> s.sequenceColumn = v.isEmpty() ? null : v;
                case "--label-prefix" -> s.labelPrefix = v;
                case "--batch-rows" -> s.batchRows = Integer.parseInt(v);
                case "--flush-interval-ms" -> s.flushIntervalMs = Long.parseLong(v);
                case "--retries" -> s.retries = Integer.parseInt(v);
                case "--checkpoint-interval-ms" -> s.checkpointIntervalMs = Long.parseLong(v);
                case "--parallelism" -> s.parallelism = Integer.parseInt(v);
                case "--stats-file" -> s.statsFile = v;
                default -> throw new IllegalArgumentException("unknown option " + a + "\n" + USAGE);
            }
        }
        if (s.mergeSql == null) {
            throw new IllegalArgumentException("--merge-file is required\n" + USAGE);
        }
        return s;
    }

    private static String env(String name) {
        String v = System.getenv(name);
        return v == null ? "" : v;
    }

    static final String USAGE = """
            usage: java -Xmx1g -jar flink-baseline.jar --merge-file merge.sql [options]
              --bootstrap HOST:PORT        Kafka (127.0.0.1:9092)
              --topic-prefix P             topics P.public.{jobs,job_activity,clients_to_exclude,standard_revenue} (bench)
              --group G                    consumer group; offsets are committed on each checkpoint (flink-baseline)
              --jdbc-url URL               PostgreSQL (jdbc:postgresql://127.0.0.1:5432/cdc2doris_bench)
              --pg-user U                  (cdc2doris)
              --pg-password-env VAR        environment variable holding the password
              --pool-size N                HikariCP connections per subtask and operator (2)
              --merge-file F               the merge query, $1 = bigint[] of job ids (examples/job-analytics/merge.sql)
              --resolve-query SQL          client id -> job ids, ? = bigint[] (SELECT id FROM jobs WHERE client_id = ANY(?))
              --doris-fe URL               Doris FE (http://127.0.0.1:8030)
              --doris-db D --doris-table T (job_analytics, merged_job_data)
              --doris-user U               (root)
              --doris-password-env VAR     environment variable holding the password (none)
              --sequence-column C          set to 0 in every row; empty: the table has none (source_version)
              --label-prefix P             (flink_baseline)
              --batch-rows N               rows per Stream Load (100)
              --flush-interval-ms MS       flush a partial batch after this long (1000)
              --retries N                  retries of a failed load, backoff 1 s doubling (3)
              --checkpoint-interval-ms MS  (5000)
              --parallelism N              (2)
              --stats-file F               counters as JSON, rewritten every 250 ms
            """;
}
