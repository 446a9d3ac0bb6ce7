// What bench/instructions.js reads in a callgrind dump: its instructions split by who executed them (the
// garbage collector, the optimising compilers, the rest), and the total callgrind itself gives.

// V8's collector: its heap classes and visitors (names as callgrind gives them, with their templates)
const GC = new RegExp(
  'v8::internal::(Heap::|Heap_|Scaveng|MarkCompact|Marking|ConcurrentMarking|IncrementalMarking|Sweeper|MinorGC|' +
    'Evacuat|RememberedSet|SlotSet|TypedSlots|MemoryAllocator|MemoryChunk|Page::|PagedSpace|NewSpace|SemiSpace|' +
    'LargeObjectSpace|GCTracer|ArrayBufferSweeper|WeakObjects|Ephemeron|PointersUpdating|RecordMigrated|' +
    'LiveObject|BodyDescriptor|HeapObjectVisitor|Worklist|LocalHeap|Safepoint|FreeList|GlobalHandles|' +
    'TracedHandles|ExternalStringTable|AllocationObserver)|^heap::base::|^cppgc::|Scavenger|MarkingVisitor|' +
    'UpdatingItem|IterateObjectCache|IterateRoots|SizeFromMap|RootVisitor|ObjectVisitor|StringTableCleaner|' +
    '__popcount',
);
const COMPILER = /v8::internal::(compiler::|maglev::|OptimizingCompile|Turbofan)/;

/** A callgrind dump's instructions by who executed them: self costs per function (call lines are inclusive). */
function instructionsOf(dump) {
  const names = new Map();
  const nameOf = (spec) => {
    const compressed = /^\((\d+)\)(?: (.*))?$/.exec(spec);
    if (compressed === null) return spec;
    if (compressed[2] !== undefined) names.set(compressed[1], compressed[2]);
    return names.get(compressed[1]);
  };
  const counts = { execution: 0, gc: 0, compiler: 0 };
  let kind = 'execution';
  let callCost = false;
  for (const line of dump.split('\n')) {
    if (line.startsWith('fn=')) {
      const name = nameOf(line.slice(3));
      kind = GC.test(name) ? 'gc' : COMPILER.test(name) ? 'compiler' : 'execution';
    } else if (line.startsWith('cfn=')) nameOf(line.slice(4));
    else if (line.startsWith('calls=')) callCost = true;
    else if (/^[0-9+*-]/.test(line)) {
      if (!callCost) counts[kind] += Number(line.split(' ')[1] ?? 0);
      callCost = false;
    }
  }
  return counts;
}

/** The dump's own total (its `totals:` line, or `summary:`): every self cost counted once. */
function totalOf(dump) {
  const total = /^(?:totals|summary): (\d+)/m.exec(dump);
  return total === null ? undefined : Number(total[1]);
}

module.exports = { instructionsOf, totalOf };
