package bench.baseline;

/** One Kafka message: the topic it came from and its value (null for a tombstone). A Flink POJO. */
public class Change {
    public String topic;
    public byte[] value;

    public Change() {}

    public Change(String topic, byte[] value) {
        this.topic = topic;
        this.value = value;
    }
}
