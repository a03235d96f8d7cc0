/// Splits a byte stream of concatenated JSON objects into one buffer per object.
///
/// The API server writes one JSON document per watch event followed by a newline, but chunks of
/// the HTTP body do not follow event boundaries: an event may be split across chunks and a chunk
/// may hold several events. The framer tracks brace depth (outside strings, honouring escapes), so
/// it works with or without the newlines and with pretty-printed documents.
public struct JSONFramer: Sendable {
  private var buffer: [UInt8] = []
  /// Index in `buffer` up to which bytes were already scanned.
  private var scanned = 0
  /// Start of the current object in `buffer`, once its `{` was seen.
  private var objectStart: Int?
  private var depth = 0
  private var inString = false
  private var escaped = false

  /// Maximum size of one JSON document; larger documents are a protocol error.
  public var maximumObjectSize: Int

  public init(maximumObjectSize: Int = 64 << 20) {
    self.maximumObjectSize = maximumObjectSize
  }

  /// Errors of the framing layer.
  public enum FramingError: Error, Equatable, CustomStringConvertible {
    case unexpectedByte(UInt8)
    case objectTooLarge(Int)
    case truncated(Int)

    public var description: String {
      switch self {
      case .unexpectedByte(let b):
        "unexpected byte 0x\(String(b, radix: 16)) between JSON documents"
      case .objectTooLarge(let n): "JSON document larger than \(n) bytes"
      case .truncated(let n): "stream ended inside a JSON document (\(n) bytes pending)"
      }
    }
  }

  /// Adds bytes and returns every JSON object completed by them, in order.
  public mutating func push<Bytes: Sequence>(_ bytes: Bytes) throws -> [[UInt8]]
  where Bytes.Element == UInt8 {
    buffer.append(contentsOf: bytes)
    var out: [[UInt8]] = []
    var i = scanned
    while i < buffer.count {
      let b = buffer[i]
      if objectStart == nil {
        switch b {
        case UInt8(ascii: "{"):
          objectStart = i
          depth = 1
        case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
          break
        default:
          throw FramingError.unexpectedByte(b)
        }
      } else if inString {
        if escaped {
          escaped = false
        } else if b == UInt8(ascii: "\\") {
          escaped = true
        } else if b == UInt8(ascii: "\"") {
          inString = false
        }
      } else {
        switch b {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
          depth -= 1
          if depth == 0, let start = objectStart {
            out.append(Array(buffer[start...i]))
            objectStart = nil
          }
        default: break
        }
      }
      i += 1
    }
    // Drop consumed bytes so the buffer only holds the pending object.
    if let start = objectStart {
      if start > 0 {
        buffer.removeFirst(start)
        objectStart = 0
      }
      scanned = buffer.count
      if buffer.count > maximumObjectSize { throw FramingError.objectTooLarge(maximumObjectSize) }
    } else {
      buffer.removeAll(keepingCapacity: true)
      scanned = 0
    }
    return out
  }

  /// Call at the end of the stream: throws if a document was left incomplete.
  public func finish() throws {
    if objectStart != nil { throw FramingError.truncated(buffer.count) }
  }
}
