// ThreadCached<T>(): one T per thread, made on first use and destroyed when the thread ends,
// for buffers and codec contexts that calls reuse instead of allocating each time.
//
// Unlike a plain thread_local, it is safe to ask for while the thread's thread_local objects
// are being destroyed or after: an Env kept in a static is closed after the main thread's
// thread_locals are gone (exit runs them before static destructors), and its final
// checkpoint still compresses and reads. The call then returns nullptr and the caller does
// without the cache.
#ifndef FERN_UTIL_THREAD_CACHE_H_
#define FERN_UTIL_THREAD_CACHE_H_

namespace fern {

template <typename T>
T* ThreadCached() {
  // Trivially destructible, so it stays readable until the thread is gone.
  thread_local bool gone = false;
  struct Holder {
    T value{};
    ~Holder() { gone = true; }
  };
  if (gone) return nullptr;
  thread_local Holder holder;
  return &holder.value;
}

}  // namespace fern

#endif  // FERN_UTIL_THREAD_CACHE_H_
