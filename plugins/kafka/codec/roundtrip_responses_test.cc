// Every response type at every version (see message_checks.h); requests and
// responses are separate units so they compile in parallel.
#include "message_checks.h"

TEST(KafkaCodecRoundTrip, EveryResponse) { sluice::kafka::testing::check_every_message<true>(); }
