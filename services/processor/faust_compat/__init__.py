"""Every use of faust's, mode's and aiokafka's private names in the processor, and only here.

The processor depends on these beyond faust's documented API, each for a reason its
module gives:

- `consumer`: the offset commit rules of services/processor/offsets.py inside faust's
  consumer, a short fetch wait, seeks in the consumer's thread, the committed offsets;
- `producer`: aiokafka's producer under faust's, for its batch API;
- `changelog`: faust's topic names, and a table's changelog topic rebuilt;
- `sensor`: faust's Prometheus sensor with its per-event work moved to the commit;
- `shutdown`: faust's Worker with a deadline on stopping.

`relied_on.RELIED_ON` lists each private name with the signature it was written
against; tests/unit/processor/test_faust_compat.py fails naming any that an upgrade moved.
Supported versions: docs/processor.md.

Nothing is imported here: `relied_on` must import without faust, so that the test can
name what an upgrade moved even when a module of this package no longer imports.
"""
