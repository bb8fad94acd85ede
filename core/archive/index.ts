// The archive's pure part: segment format, manifests, retention plan.
export {
  SegmentManifestSchema,
  ArchiveIntegrityError,
  parseManifest,
  segmentKey,
  streamArchivePrefix,
  encodeKeySegment,
  decodeKeySegment,
  parseSegmentKey,
  type SegmentManifest,
} from "./manifest.js";
export { encodeSegment, decodeSegment, inspectSegment, chainRun, sha256Hex, type ArchiveEntry, type DecodedEntry, type EncodedSegment, type SegmentCodec } from "./segment.js";
export { planSegments, cutoffOffset, isOlderThan, nextOffset, type PlanOptions } from "./plan.js";
export {
  encodeLogSegment,
  decodeLogSegment,
  parseLogManifest,
  logSegmentKey,
  LogSegmentManifestSchema,
  type LogArchiveEntry,
  type LogSegmentManifest,
} from "./log-segment.js";
