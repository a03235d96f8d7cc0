import NFTables

#if canImport(Glibc)
  import Glibc
#endif

/// Errors of the netlink backend.
public enum NFTError: Error, CustomStringConvertible, Equatable {
  /// A system call or netlink exchange failed (`operation` says which).
  case system(operation: String, errno: Int32)
  /// The kernel rejected the transaction; nothing of it was applied. `operation` names the first
  /// failing message ("add rule to chain X of table ip nftproxy"); `otherErrors` counts further
  /// rejected messages of the same batch.
  case rejected(operation: String, errno: Int32, otherErrors: Int)
  /// The rule set cannot be encoded.
  case encoding(String)

  public var description: String {
    switch self {
    case .system(let op, let e): return "\(op): \(NFTError.strerror(e))"
    case .rejected(let op, let e, let others):
      return "\(op): \(NFTError.strerror(e))" + (others > 0 ? " (and \(others) more errors)" : "")
    case .encoding(let m): return "cannot encode rule set: \(m)"
    }
  }

  static func strerror(_ e: Int32) -> String { String(cString: Glibc.strerror(e)) }
}

/// A transaction as it would be sent: its operations and their netlink size.
public struct Transaction: Sendable {
  public var kind: SyncReport.Kind
  public var operations: [NFTOperation]
  /// One line per netlink message (BEGIN and END excluded), naming its operation.
  public var messages: [String]
  /// Object messages, without BEGIN and END.
  public var messageCount: Int { messages.count }
  /// Bytes of the whole batch including BEGIN and END; 0 when nothing would be sent.
  public var byteCount: Int
}

/// What one sync did.
public struct SyncReport: Sendable, CustomStringConvertible {
  public enum Kind: String, Sendable {
    case full, partial, none
  }
  public var kind: Kind
  /// Why this kind ("first sync", "forced", "ruleset generation changed ...", ...).
  public var reason: String
  /// Object messages sent (0 for `.none`).
  public var messageCount: Int
  public var byteCount: Int
  /// From the start of the sync to the kernel's acknowledgement (includes encoding).
  public var duration: Duration
  /// Ruleset generation after the commit, when known.
  public var generation: UInt32?
  /// The change applied by a partial sync.
  public var diff: RulesetDiff?

  public var description: String {
    "\(kind.rawValue) sync (\(reason)): \(messageCount) messages, \(byteCount) bytes, \(duration)"
  }
}

/// Programs nftproxy's tables in one network namespace over netlink (libnftnl + libmnl).
///
/// Every sync is one atomic batch. The last applied rule set is kept in memory; the next sync
/// sends only the difference, unless the ruleset generation shows that someone else committed
/// since (then the tables are replaced as a whole, which repairs any drift).
public final class NFTBackend {
  private let socket: NetlinkSocket
  public private(set) var applied: Ruleset?
  /// Ruleset generation right after our last commit; nil forces the next sync to be full.
  private var appliedGeneration: UInt32?

  /// Opens a netlink socket in the namespace at `namespacePath` (`/var/run/netns/NAME`), or in
  /// the current namespace.
  public init(namespacePath: String? = nil) throws {
    socket = try NetlinkSocket(namespacePath: namespacePath)
  }

  // MARK: planning

  /// The transaction a sync of `ruleset` would send now (without sending it). It does not look
  /// at the kernel: a partial plan assumes the kernel still holds `applied`.
  public func plan(_ ruleset: Ruleset, full: Bool) throws -> Transaction {
    try NFTBackend.plan(from: applied, to: ruleset, full: full)
  }

  /// The transaction that turns `applied` (nil: unknown, so a full sync) into `ruleset`.
  public static func plan(from applied: Ruleset?, to ruleset: Ruleset, full: Bool) throws
    -> Transaction
  {
    let (kind, ops) = operations(from: applied, to: ruleset, full: full)
    if ops.isEmpty { return Transaction(kind: .none, operations: [], messages: [], byteCount: 0) }
    let built = try build(ops, firstSeq: 1, genid: nil)
    return Transaction(
      kind: kind, operations: ops, messages: built.summaries, byteCount: built.batch.byteCount)
  }

  private static func operations(from applied: Ruleset?, to ruleset: Ruleset, full: Bool)
    -> (SyncReport.Kind, [NFTOperation])
  {
    guard let applied, !full else { return (.full, Diff.fullSync(ruleset, previous: applied)) }
    return (.partial, Diff.operations(from: applied, to: ruleset))
  }

  private struct Built {
    var batch: NLBatch
    var summaries: [String]
    var firstSeq: UInt32
  }

  /// Encodes operations into one batch on this socket's sequence numbers.
  private func build(_ ops: [NFTOperation], genid: UInt32?) throws -> Built {
    try NFTBackend.build(ops, firstSeq: nil, genid: genid, reserve: socket.reserveSeq)
  }

  /// Encodes operations into one batch: BEGIN at `firstSeq` (or reserved with `reserve`), one
  /// message per sequence number after it, END last.
  private static func build(
    _ ops: [NFTOperation], firstSeq: UInt32?, genid: UInt32?, reserve: ((Int) -> UInt32)? = nil
  ) throws -> Built {
    let encoded: [Encoder.Encoded]
    do {
      encoded = try Encoder.encode(ops)
    } catch let e as EncodingError {
      throw NFTError.encoding(e.message)
    }
    let firstSeq = firstSeq ?? reserve!(encoded.count + 2)
    let batch = try NLBatch()
    try batch.begin(seq: firstSeq, genid: genid)
    var seq = firstSeq
    for e in encoded {
      seq &+= 1
      try batch.add(e.message, seq: seq)
    }
    try batch.end(seq: seq &+ 1)
    return Built(batch: batch, summaries: encoded.map(\.summary), firstSeq: firstSeq)
  }

  // MARK: sync

  /// Applies `ruleset`: a full sync when `full`, when nothing was applied yet, or when the
  /// ruleset generation changed since our last commit; otherwise a partial one. A sync with no
  /// change sends nothing.
  public func sync(_ ruleset: Ruleset, full: Bool = false) throws -> SyncReport {
    let clock = ContinuousClock()
    let start = clock.now
    var reason: String
    var doFull = full
    if full {
      reason = "forced"
    } else if applied == nil {
      doFull = true
      reason = "first sync"
    } else if appliedGeneration == nil {
      doFull = true
      reason = "state after the last sync unknown"
    } else {
      let gen = try generation()
      if gen != appliedGeneration {
        doFull = true
        reason = "ruleset generation changed from \(appliedGeneration!) to \(gen) by another writer"
      } else {
        reason = "incremental"
      }
    }

    for attempt in 0..<3 {
      let old = applied
      let (kind, ops) = NFTBackend.operations(from: applied, to: ruleset, full: doFull)
      if ops.isEmpty {
        applied = ruleset
        return SyncReport(
          kind: .none, reason: "no changes", messageCount: 0, byteCount: 0,
          duration: clock.now - start,
          generation: appliedGeneration)
      }
      // The batch carries the generation it was computed against; if another writer commits in
      // between, the kernel refuses it (ERESTART) and we retry with a full sync.
      let before = doFull ? try generation() : appliedGeneration!
      let built = try build(ops, genid: before)
      let bytes = built.batch.byteCount
      do {
        try send(built)
      } catch NFTError.rejected(_, let e, _) where e == ERESTART && attempt < 2 {
        doFull = true
        reason = "another writer committed during the sync"
        continue
      } catch let e as NFTError {
        // A rejected batch changed nothing; anything else leaves the kernel state uncertain.
        if case .rejected = e {} else { appliedGeneration = nil }
        throw e
      }
      applied = ruleset
      let after = try? generation()
      appliedGeneration = after == before &+ 1 ? after : nil
      return SyncReport(
        kind: kind, reason: reason, messageCount: built.summaries.count, byteCount: bytes,
        duration: clock.now - start, generation: after,
        diff: kind == .partial && old != nil ? Diff.compare(old!, ruleset) : nil)
    }
    throw NFTError.system(operation: "sync: other writers kept committing", errno: EAGAIN)
  }

  /// Sends operations as one batch, bypassing the applied state (cleanup, tests).
  func apply(_ ops: [NFTOperation], genid: UInt32?) throws {
    try send(try build(ops, genid: genid))
  }

  /// Sends a built batch and maps the first error to its operation.
  private func send(_ b: Built) throws {
    let firstMsg = b.firstSeq &+ 1
    let lastMsg = b.firstSeq &+ UInt32(b.summaries.count)
    let responses = try socket.send(b.batch, expected: firstMsg...lastMsg)
    let errors = responses.filter { $0.error != 0 }
    guard let firstError = errors.min(by: { $0.seq &- b.firstSeq < $1.seq &- b.firstSeq }) else {
      return
    }
    let index = Int(firstError.seq &- firstMsg)
    let op: String
    if firstError.seq == b.firstSeq {
      op = "begin transaction"
    } else if index >= 0 && index < b.summaries.count {
      op = b.summaries[index]
    } else {
      op = "transaction"
    }
    throw NFTError.rejected(operation: op, errno: -firstError.error, otherErrors: errors.count - 1)
  }

  // MARK: generation

  /// The kernel's ruleset generation id (`.generation`); it changes with every commit.
  public func generation() throws -> UInt32 {
    var gen: UInt32?
    try socket.request(.generation, family: 0, dump: false) { nlh in
      gen = NLGen.parse(nlh)
    }
    guard let gen else {
      throw NFTError.system(operation: "read ruleset generation", errno: EPROTO)
    }
    return gen
  }

  // MARK: read-back

  /// Reads the given tables from the kernel and decodes them; absent tables are left out.
  public func readBack(tables: [(TableFamily, String)]) throws -> Ruleset {
    var lastError: Error? = nil
    for _ in 0..<5 {
      do {
        return try readBackOnce(tables: tables)
      } catch is NetlinkSocket.DumpInterrupted {
        lastError = NFTError.system(
          operation: "read back (dump kept being interrupted)", errno: EINTR)
        continue
      }
    }
    throw lastError!
  }

  private func readBackOnce(tables: [(TableFamily, String)]) throws -> Ruleset {
    Ruleset(tables: try dump(tables: tables).map(Decoder.table))
  }

  /// The kernel objects of one table as read back, before decoding.
  struct TableDump: Equatable {
    struct SetDump: Equatable {
      var set: K.Set
      var elements: [K.Element]
    }
    var table: K.Table
    var sets: [SetDump] = []
    var chains: [K.Chain] = []
    var rules: [String: [K.Rule]] = [:]
  }

  /// Dumps the given tables' sets (with elements), chains and rules; absent tables are left out.
  func dump(tables: [(TableFamily, String)]) throws -> [TableDump] {
    var out: [TableDump] = []
    for (family, name) in tables {
      var kt: K.Table?
      try socket.request(.tables, family: nfproto(family), dump: true) { nlh in
        if let t = NLTable.parse(nlh), t.name == name, t.family == family { kt = t }
      }
      guard let kt else { continue }
      var d = TableDump(table: kt)
      var sets: [K.Set] = []
      try socket.request(
        .sets, family: nfproto(family), dump: true, payload: { NLSet(table: name).payload($0) }
      ) {
        nlh in
        // Skip anonymous sets (flag 1): nftproxy never creates them.
        if let s = NLSet.parse(nlh), s.table == name, s.family == family, s.flags & 1 == 0 {
          sets.append(s)
        }
      }
      for s in sets {
        var elements: [K.Element] = []
        let ref = K.Set(family: family, table: name, name: s.name, flags: 0, keyType: 0, keyLen: 0)
        try socket.request(
          .elements, family: nfproto(family), dump: true,
          payload: { NLSet(reference: ref).elementsPayload($0) }
        ) { nlh in
          if let (_, e) = NLSet.parseElements(nlh) { elements += e }
        }
        d.sets.append(TableDump.SetDump(set: s, elements: elements))
      }
      try socket.request(
        .chains, family: nfproto(family), dump: true, payload: { NLChain(table: name).payload($0) }
      ) {
        nlh in
        if let c = NLChain.parse(nlh), c.table == name, c.family == family { d.chains.append(c) }
      }
      try socket.request(
        .rules, family: nfproto(family), dump: true,
        payload: { NLRule(table: name, chain: nil).payload($0) }
      ) { nlh in
        if let (r, _) = NLRule.parse(nlh), r.table == name, r.family == family {
          d.rules[r.chain, default: []].append(r)
        }
      }
      out.append(d)
    }
    return out
  }

  /// What a sync of `ruleset` would change in the kernel right now (reads the kernel's tables;
  /// changes nothing).
  public func diffAgainstKernel(_ ruleset: Ruleset) throws -> RulesetDiff {
    var names: [(TableFamily, String)] = ruleset.tables.map { ($0.family, $0.name) }
    for t in applied?.tables ?? [] where !names.contains(where: { $0 == (t.family, t.name) }) {
      names.append((t.family, t.name))
    }
    let kernel = try readBack(tables: names)
    return Diff.compare(kernel, KernelForm.normalize(ruleset))
  }

  // MARK: cleanup

  /// Deletes exactly these tables (absent ones are fine) in one transaction.
  public func cleanup(tables: [(TableFamily, String)]) throws {
    var ops: [NFTOperation] = []
    for (f, n) in tables {
      ops.append(.ensureTable(f, n))
      ops.append(.deleteTable(f, n))
    }
    guard !ops.isEmpty else { return }
    try apply(ops, genid: nil)
    if var a = applied {
      a.tables.removeAll { t in tables.contains { $0 == (t.family, t.name) } }
      applied = a
    }
    appliedGeneration = nil
  }
}
