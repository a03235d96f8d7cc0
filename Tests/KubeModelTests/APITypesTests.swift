import Foundation
import KubeModel
import Testing

@Suite("API envelope types")
struct APITypesTests {
  @Test func listDecodes() throws {
    let json = #"""
      {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"123","continue":"abc"},
       "items":[{"metadata":{"name":"a","namespace":"x"},"spec":{"clusterIP":"10.96.0.1"}}]}
      """#
    let list = try JSONDecoder().decode(KubeList<Service>.self, from: Data(json.utf8))
    #expect(list.metadata?.resourceVersion == "123")
    #expect(list.metadata?.continue == "abc")
    #expect(list.items.map(\.key) == ["x/a"])
    let empty = try JSONDecoder().decode(
      KubeList<Node>.self, from: Data(#"{"kind":"NodeList","items":null}"#.utf8))
    #expect(empty.items.isEmpty)
  }

  @Test func watchEventsDecode() throws {
    let lines = [
      #"{"type":"ADDED","object":{"metadata":{"name":"n1","resourceVersion":"5"}}}"#,
      #"{"type":"BOOKMARK","object":{"kind":"Node","apiVersion":"v1","metadata":{"resourceVersion":"12746"}}}"#,
      #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}"#,
      #"{"type":"DELETED","object":{"metadata":{"name":"n1"}}}"#,
    ]
    let events = try lines.map {
      try JSONDecoder().decode(WatchEvent<Node>.self, from: Data($0.utf8))
    }
    #expect(events.map(\.type) == [.added, .bookmark, .error, .deleted])
    guard case .added(let node) = events[0] else {
      Issue.record("not added")
      return
    }
    #expect(node.metadata.resourceVersion == "5")
    #expect(events[1] == .bookmark(resourceVersion: "12746"))
    guard case .error(let status) = events[2] else {
      Issue.record("not error")
      return
    }
    #expect(status.code == 410)
    #expect(status.reason == "Expired")
    #expect(status.description == "410 Expired too old resource version: 1 (2)")

    // Round trip through the encoder.
    for e in events {
      let again = try JSONDecoder().decode(WatchEvent<Node>.self, from: JSONEncoder().encode(e))
      #expect(again == e)
    }
    #expect(throws: DecodingError.self) {
      try JSONDecoder().decode(
        WatchEvent<Node>.self, from: Data(#"{"type":"SOMETHING","object":{}}"#.utf8))
    }
  }
}
