package bench.baseline;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.zaxxer.hikari.HikariDataSource;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Types;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.util.Collector;

/**
 * The merge query for one job id through a JDBC prepared statement (pgjdbc turns a statement run five times on a
 * connection into a server-side prepared one), on a HikariCP pool per subtask. Each row becomes one JSON line for
 * Stream Load, its column names as keys. The table's sequence column gets a constant: this job has no versions, so
 * the last load of a key wins (Doris replaces a row when the new sequence value is greater than or equal to the
 * stored one). A job id the query does not return produces nothing: the reference design has no deletes.
 */
final class MergeQuery extends RichFlatMapFunction<Long, String> {
    private static final ObjectMapper JSON =
            new ObjectMapper().enable(JsonGenerator.Feature.WRITE_BIGDECIMAL_AS_PLAIN);

    private final Settings settings;
    private transient HikariDataSource pool;

    MergeQuery(Settings settings) {
        this.settings = settings;
    }

    @Override
    public void open(Configuration parameters) {
        pool = settings.newPool("merge-" + getRuntimeContext().getIndexOfThisSubtask());
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.close();
        }
    }

    @Override
    public void flatMap(Long jobId, Collector<String> out) throws Exception {
        Stats.MERGE_QUERIES.incrementAndGet();
        try (Connection c = pool.getConnection();
                PreparedStatement ps = c.prepareStatement(settings.mergeSql)) {
            java.sql.Array ids = c.createArrayOf("bigint", new Long[] {jobId});
            for (int p = 1; p <= settings.mergeSqlParameters; p++) {
                ps.setArray(p, ids); // each `$1` of the query became one `?`
            }
            try (ResultSet rs = ps.executeQuery()) {
                ResultSetMetaData md = rs.getMetaData();
                while (rs.next()) {
                    ObjectNode row = JSON.createObjectNode();
                    for (int i = 1; i <= md.getColumnCount(); i++) {
                        putColumn(row, md.getColumnLabel(i), md.getColumnType(i), rs, i);
                    }
                    if (settings.sequenceColumn != null) {
                        row.put(settings.sequenceColumn, 0L);
                    }
                    Stats.ROWS_MERGED.incrementAndGet();
                    out.collect(JSON.writeValueAsString(row));
                }
            }
        }
    }

    private static void putColumn(ObjectNode row, String name, int type, ResultSet rs, int i) throws Exception {
        switch (type) {
            case Types.BIGINT, Types.INTEGER, Types.SMALLINT, Types.TINYINT -> {
                long v = rs.getLong(i);
                if (rs.wasNull()) {
                    row.putNull(name);
                } else {
                    row.put(name, v);
                }
            }
            case Types.NUMERIC, Types.DECIMAL -> {
                BigDecimal v = rs.getBigDecimal(i);
                if (v == null) {
                    row.putNull(name);
                } else {
                    row.put(name, v);
                }
            }
            case Types.BOOLEAN, Types.BIT -> {
                boolean v = rs.getBoolean(i);
                if (rs.wasNull()) {
                    row.putNull(name);
                } else {
                    row.put(name, v);
                }
            }
            default -> row.put(name, rs.getString(i)); // text, dates and the timestamps the query renders
        }
    }
}
