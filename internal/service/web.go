package service

import (
	"net/http"

	"github.com/bookscatalog/catalog/internal/eskafka"
)

// extraHandlers returns the handlers mounted beside the JSON API: metrics
// and the web application.
func (s *Service) extraHandlers(brokers []string, rtCfg eskafka.Config, codecs *kafkaCodecs) map[string]http.Handler {
	_, _, _ = brokers, rtCfg, codecs
	return map[string]http.Handler{"GET /metrics": s.metrics.Handler()}
}
