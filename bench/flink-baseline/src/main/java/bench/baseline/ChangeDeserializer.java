package bench.baseline;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/** Keeps the topic next to the raw value: the topic decides which field holds the key. */
final class ChangeDeserializer implements KafkaRecordDeserializationSchema<Change> {
    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Change> out) {
        Stats.EVENTS.incrementAndGet();
        out.collect(new Change(record.topic(), record.value()));
    }

    @Override
    public TypeInformation<Change> getProducedType() {
        return TypeInformation.of(Change.class);
    }
}
