import Testing

/// Expects a reply from one of `pods`; when `sources` is given, the server must have seen one
/// of those source addresses.
func expectServed(
  _ outcome: Outcome, by pods: [Pod], sourceIn sources: Set<String>? = nil, _ context: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard case .reply(let pod, let source) = outcome else {
    Issue.record(
      "\(context): expected a reply from \(pods), got \(outcome)", sourceLocation: sourceLocation)
    return
  }
  #expect(
    pods.contains { $0.name == pod }, "\(context): answered by \(pod), expected one of \(pods)",
    sourceLocation: sourceLocation)
  if let sources {
    #expect(
      sources.contains(source),
      "\(context): server saw source \(source), expected one of \(sources.sorted())",
      sourceLocation: sourceLocation)
  }
}

func expectOutcome(
  _ outcome: Outcome, _ expected: Outcome, _ context: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(
    outcome == expected, "\(context): expected \(expected), got \(outcome)",
    sourceLocation: sourceLocation)
}

/// Sends `count` requests and returns what answered each.
func repeatRequests(_ count: Int, _ send: () -> Outcome) -> [Outcome] {
  (0..<count).map { _ in send() }
}

/// How many replies each pod gave.
func tally(_ outcomes: [Outcome]) -> [String: Int] {
  outcomes.reduce(into: [:]) { counts, o in
    if let pod = o.pod { counts[pod, default: 0] += 1 }
  }
}
