package eskafka

// ProducerLimit returns the batch limit the app's producer uses for topic.
func (a *App) ProducerLimit(topic string) int32 { return a.batchMaxBytes(topic) }
