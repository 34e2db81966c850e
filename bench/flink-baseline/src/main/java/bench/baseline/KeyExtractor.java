package bench.baseline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.LinkedHashSet;
import java.util.Set;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.util.Collector;

/**
 * Reads the job ids a change touches, as the job-analytics key rules say: {@code jobs.id},
 * {@code job_activity.job_id}, {@code standard_revenue.job_id}, and for {@code clients_to_exclude.client_id} every
 * job of that client (the resolve query, one JDBC query per message). Debezium JSON (with or without the schema
 * envelope) and Maxwell JSON are understood; the table is the last dot-separated part of the topic, or Maxwell's
 * {@code table} field. Both the new and the old image are read, so a row that moves between jobs refreshes both.
 */
final class KeyExtractor extends RichFlatMapFunction<Change, Long> {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Settings settings;
    private transient HikariDataSource pool;

    KeyExtractor(Settings settings) {
        this.settings = settings;
    }

    @Override
    public void open(Configuration parameters) {
        pool = settings.newPool("resolve-" + getRuntimeContext().getIndexOfThisSubtask());
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.close();
        }
    }

    @Override
    public void flatMap(Change change, Collector<Long> out) throws Exception {
        if (change.value == null) {
            return; // a tombstone: the delete before it carried the key
        }
        JsonNode root;
        try {
            root = JSON.readTree(change.value);
        } catch (Exception e) {
            Stats.UNDECODABLE.incrementAndGet();
            return;
        }
        if (root == null || !root.isObject()) {
            Stats.UNDECODABLE.incrementAndGet();
            return;
        }
        String table;
        JsonNode newImage;
        JsonNode oldImage;
        if (root.has("data") && root.has("table")) { // Maxwell: data is the row, old holds changed columns only
            table = root.path("table").asText();
            newImage = root.get("data");
            oldImage = root.get("old");
        } else { // Debezium
            JsonNode envelope = root.has("payload") && root.get("payload").isObject() ? root.get("payload") : root;
            table = change.topic.substring(change.topic.lastIndexOf('.') + 1);
            newImage = envelope.get("after");
            oldImage = envelope.get("before");
        }
        String field = settings.keyField(table);
        if (field == null) {
            Stats.UNDECODABLE.incrementAndGet();
            return;
        }
        Set<Long> keys = new LinkedHashSet<>(2);
        addKey(newImage, field, keys);
        addKey(oldImage, field, keys);
        if (keys.isEmpty()) {
            Stats.UNDECODABLE.incrementAndGet();
            return;
        }
        if (!settings.isResolved(table)) {
            for (Long k : keys) {
                Stats.IDS_EXTRACTED.incrementAndGet();
                out.collect(k);
            }
            return;
        }
        for (Long clientId : keys) {
            resolve(clientId, out);
        }
    }

    private static void addKey(JsonNode image, String field, Set<Long> keys) {
        if (image == null || !image.isObject()) {
            return;
        }
        JsonNode v = image.get(field);
        if (v != null && v.canConvertToLong()) {
            keys.add(v.asLong());
        } else if (v != null && v.isTextual()) {
            try {
                keys.add(Long.parseLong(v.asText()));
            } catch (NumberFormatException ignored) {
                // not a key we can use
            }
        }
    }

    /** Every job of one client, through the resolve query. */
    private void resolve(long clientId, Collector<Long> out) throws Exception {
        Stats.RESOLVE_QUERIES.incrementAndGet();
        try (Connection c = pool.getConnection();
                PreparedStatement ps = c.prepareStatement(settings.resolveSql)) {
            Array ids = c.createArrayOf("bigint", new Long[] {clientId});
            ps.setArray(1, ids);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    Stats.IDS_EXTRACTED.incrementAndGet();
                    out.collect(rs.getLong(1));
                }
            }
        }
    }
}
