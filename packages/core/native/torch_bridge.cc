// fedcxr's bridge from Node to libtorch (ATen). Deliberately generic: it creates tensors from buffers, reads
// them back, frees them, and calls any ATen (or torchvision) operator by its schema name through the
// dispatcher with boxed arguments converted by the schema's argument types. Which operator serves which
// TensorFlow.js kernel is decided in TypeScript (packages/core/src/engine/torch/kernels), never here.
//
// Tensors are held in a slot table and named by small integers: tfjs frees its data explicitly
// (KernelBackend.disposeData), so no garbage-collector finalizer is needed and a handle costs nothing.
#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>

#include <dlfcn.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#ifndef FEDCXR_LIBTORCH_VERSION
#define FEDCXR_LIBTORCH_VERSION "unknown"
#endif

namespace {

std::vector<at::Tensor> slots;
std::vector<int32_t> freeSlots;
size_t liveTensors = 0;
std::vector<c10::OperatorHandle> operators;
std::unordered_map<std::string, int32_t> operatorIds;

// Every call runs without autograd bookkeeping: tfjs keeps its own tape, and inference mode skips
// ATen's version counters and view tracking. Entered once for the process (Node calls from one thread).
void enterInferenceMode() {
  static c10::InferenceMode* guard = new c10::InferenceMode(true);
  (void)guard;
}

int32_t store(at::Tensor tensor) {
  liveTensors++;
  if (!freeSlots.empty()) {
    int32_t id = freeSlots.back();
    freeSlots.pop_back();
    slots[id] = std::move(tensor);
    return id;
  }
  slots.push_back(std::move(tensor));
  return static_cast<int32_t>(slots.size() - 1);
}

const at::Tensor& tensorAt(const Napi::Env& env, const Napi::Value& value) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, "expected a tensor handle (number)");
  int64_t id = value.As<Napi::Number>().Int64Value();
  if (id < 0 || id >= static_cast<int64_t>(slots.size()) || !slots[id].defined()) {
    throw Napi::Error::New(env, "tensor handle " + std::to_string(id) + " is not live");
  }
  return slots[id];
}

at::ScalarType scalarTypeNamed(const Napi::Env& env, const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "int32") return at::kInt;
  if (name == "bool") return at::kBool;
  if (name == "int64") return at::kLong;
  if (name == "float64") return at::kDouble;
  if (name == "uint8") return at::kByte;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw Napi::TypeError::New(env, "unknown dtype '" + name + "'");
}

const char* scalarTypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    case at::kLong: return "int64";
    case at::kDouble: return "float64";
    case at::kByte: return "uint8";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: return "other";
  }
}

std::vector<int64_t> intList(const Napi::Env& env, const Napi::Value& value) {
  if (value.IsNumber()) return {value.As<Napi::Number>().Int64Value()};
  if (!value.IsArray()) throw Napi::TypeError::New(env, "expected an int list");
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> out(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) out[i] = array.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

c10::Scalar scalarOf(const Napi::Env& env, const Napi::Value& value) {
  if (value.IsBoolean()) return c10::Scalar(value.As<Napi::Boolean>().Value());
  if (!value.IsNumber()) throw Napi::TypeError::New(env, "expected a number for a Scalar");
  double number = value.As<Napi::Number>().DoubleValue();
  // Integral JS numbers become integer Scalars so that integer tensors keep their dtype (a + 1 on int32).
  if (std::isfinite(number) && number == static_cast<double>(static_cast<int64_t>(number)) &&
      std::abs(number) < 9007199254740992.0) {
    return c10::Scalar(static_cast<int64_t>(number));
  }
  return c10::Scalar(number);
}

// Converts one JS value to the IValue the schema's argument type asks for.
c10::IValue toIValue(const Napi::Env& env, const Napi::Value& value, const c10::TypePtr& type,
                     const c10::TypePtr& realType) {
  using c10::TypeKind;
  if (type->kind() == TypeKind::OptionalType) {
    if (value.IsNull() || value.IsUndefined()) return c10::IValue();
    auto inner = type->expectRef<c10::OptionalType>().getElementType();
    auto realInner = realType->kind() == TypeKind::OptionalType
                         ? realType->expectRef<c10::OptionalType>().getElementType()
                         : realType;
    return toIValue(env, value, inner, realInner);
  }
  switch (realType->kind()) {
    case TypeKind::TensorType:
      return c10::IValue(tensorAt(env, value));
    case TypeKind::ScalarTypeType:
      if (value.IsString()) return c10::IValue(static_cast<int64_t>(scalarTypeNamed(env, value.As<Napi::String>())));
      return c10::IValue(value.As<Napi::Number>().Int64Value());
    case TypeKind::DeviceObjType:
      return c10::IValue(c10::Device(value.As<Napi::String>().Utf8Value()));
    case TypeKind::IntType:
    case TypeKind::SymIntType:
    case TypeKind::LayoutType:
    case TypeKind::MemoryFormatType:
      if (value.IsBoolean()) return c10::IValue(static_cast<int64_t>(value.As<Napi::Boolean>().Value()));
      return c10::IValue(value.As<Napi::Number>().Int64Value());
    case TypeKind::FloatType:
    case TypeKind::SymFloatType:
      return c10::IValue(value.As<Napi::Number>().DoubleValue());
    case TypeKind::BoolType:
    case TypeKind::SymBoolType:
      if (value.IsNumber()) return c10::IValue(value.As<Napi::Number>().DoubleValue() != 0);
      return c10::IValue(value.As<Napi::Boolean>().Value());
    case TypeKind::NumberType:
      return c10::IValue(scalarOf(env, value));
    case TypeKind::StringType:
      return c10::IValue(value.As<Napi::String>().Utf8Value());
    case TypeKind::ListType: {
      auto element = realType->expectRef<c10::ListType>().getElementType();
      switch (element->kind()) {
        case TypeKind::IntType:
        case TypeKind::SymIntType:
          return c10::IValue(intList(env, value));
        case TypeKind::FloatType: {
          auto array = value.As<Napi::Array>();
          std::vector<double> out(array.Length());
          for (uint32_t i = 0; i < array.Length(); i++) out[i] = array.Get(i).As<Napi::Number>().DoubleValue();
          return c10::IValue(out);
        }
        case TypeKind::BoolType: {
          auto array = value.As<Napi::Array>();
          c10::List<bool> out;
          for (uint32_t i = 0; i < array.Length(); i++) out.push_back(array.Get(i).ToBoolean().Value());
          return c10::IValue(out);
        }
        case TypeKind::TensorType: {
          auto array = value.As<Napi::Array>();
          std::vector<at::Tensor> out;
          out.reserve(array.Length());
          for (uint32_t i = 0; i < array.Length(); i++) out.push_back(tensorAt(env, array.Get(i)));
          return c10::IValue(out);
        }
        case TypeKind::OptionalType: {
          // Tensor?[] (aten::index): null entries are "take the whole axis".
          auto array = value.As<Napi::Array>();
          c10::List<std::optional<at::Tensor>> out;
          for (uint32_t i = 0; i < array.Length(); i++) {
            Napi::Value entry = array.Get(i);
            if (entry.IsNull() || entry.IsUndefined()) out.push_back(std::nullopt);
            else out.push_back(tensorAt(env, entry));
          }
          return c10::IValue(out);
        }
        default:
          break;
      }
      break;
    }
    default:
      break;
  }
  throw Napi::TypeError::New(env, "argument of type " + realType->str() + " is not supported by the bridge");
}

Napi::Value fromIValue(const Napi::Env& env, const c10::IValue& value) {
  if (value.isTensor()) {
    const at::Tensor& tensor = value.toTensor();
    if (!tensor.defined()) return env.Null();
    return Napi::Number::New(env, store(tensor));
  }
  if (value.isTensorList()) {
    auto list = value.toTensorList();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, Napi::Number::New(env, store(list.get(i))));
    return out;
  }
  if (value.isTuple()) {
    const auto& elements = value.toTupleRef().elements();
    auto out = Napi::Array::New(env, elements.size());
    for (size_t i = 0; i < elements.size(); i++) out.Set(i, fromIValue(env, elements[i]));
    return out;
  }
  if (value.isList()) {
    auto list = value.toListRef();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, fromIValue(env, list[i]));
    return out;
  }
  if (value.isNone()) return env.Null();
  if (value.isInt()) return Napi::Number::New(env, static_cast<double>(value.toInt()));
  if (value.isDouble()) return Napi::Number::New(env, value.toDouble());
  if (value.isBool()) return Napi::Boolean::New(env, value.toBool());
  if (value.isScalar()) return Napi::Number::New(env, value.toScalar().toDouble());
  if (value.isString()) return Napi::String::New(env, value.toStringRef());
  throw Napi::TypeError::New(env, "the bridge cannot return a " + value.tagKind());
}

// Turns a C++ exception into a JS error whose first line is the operator's message (libtorch appends
// a C++ stack trace after it, which users should never see).
template <typename F>
Napi::Value guarded(const Napi::Env& env, const std::string& what, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& error) {
    std::string message = error.what_without_backtrace();
    throw Napi::Error::New(env, what + ": " + message);
  } catch (const std::exception& error) {
    throw Napi::Error::New(env, what + ": " + error.what());
  }
}

// op(name, overload) -> id, or -1 when no such operator is registered.
Napi::Value FindOperator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  std::string key = name + "." + overload;
  auto found = operatorIds.find(key);
  if (found != operatorIds.end()) return Napi::Number::New(env, found->second);
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle.has_value()) return Napi::Number::New(env, -1);
  operators.push_back(*handle);
  int32_t id = static_cast<int32_t>(operators.size() - 1);
  operatorIds[key] = id;
  return Napi::Number::New(env, id);
}

// call(operatorId, positionalArgs[], keywordArgs?) -> the operator's return value(s).
Napi::Value Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id = info[0].As<Napi::Number>().Int64Value();
  if (id < 0 || id >= static_cast<int64_t>(operators.size())) throw Napi::Error::New(env, "unknown operator id");
  const c10::OperatorHandle& op = operators[id];
  const c10::FunctionSchema& schema = op.schema();
  return guarded(env, schema.name() + (schema.overload_name().empty() ? "" : "." + schema.overload_name()), [&]() {
    auto positional = info[1].As<Napi::Array>();
    Napi::Object keywords = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object();
    const auto& arguments = schema.arguments();
    if (positional.Length() > arguments.size()) {
      throw Napi::Error::New(env, "too many arguments (" + std::to_string(positional.Length()) + " for " +
                                      std::to_string(arguments.size()) + ")");
    }
    torch::jit::Stack stack;
    stack.reserve(arguments.size());
    for (size_t i = 0; i < arguments.size(); i++) {
      const c10::Argument& argument = arguments[i];
      Napi::Value value = env.Undefined();
      if (i < positional.Length()) value = positional.Get(i);
      else if (!keywords.IsEmpty() && keywords.Has(argument.name())) value = keywords.Get(argument.name());
      if (value.IsUndefined()) {
        if (argument.default_value().has_value()) {
          stack.push_back(*argument.default_value());
          continue;
        }
        throw Napi::Error::New(env, "argument '" + argument.name() + "' is required");
      }
      try {
        stack.push_back(toIValue(env, value, argument.type(), argument.real_type()));
      } catch (const Napi::Error& error) {
        throw Napi::Error::New(env, "argument '" + argument.name() + "': " + error.Message());
      }
    }
    op.callBoxed(&stack);
    if (stack.empty()) return env.Undefined();
    if (stack.size() == 1) return fromIValue(env, stack[0]);
    auto out = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); i++) out.Set(i, fromIValue(env, stack[i]));
    return static_cast<Napi::Value>(out);
  });
}

// fromBuffer(typedArray, shape, dtype, device) -> handle. The data is copied (tfjs may reuse its array).
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "fromBuffer", [&]() {
    auto array = info[0].As<Napi::TypedArray>();
    std::vector<int64_t> shape = intList(env, info[1]);
    at::ScalarType type = scalarTypeNamed(env, info[2].As<Napi::String>());
    std::string device = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "cpu";
    auto bytes = array.ArrayBuffer();
    uint8_t* data = static_cast<uint8_t*>(bytes.Data()) + array.ByteOffset();
    at::Tensor host = at::empty(shape, at::TensorOptions().dtype(type));
    size_t expected = host.numel() * host.element_size();
    if (expected != array.ByteLength()) {
      throw Napi::Error::New(env, "buffer holds " + std::to_string(array.ByteLength()) + " bytes, shape needs " +
                                      std::to_string(expected));
    }
    if (expected > 0) std::memcpy(host.data_ptr(), data, expected);
    if (device != "cpu") host = host.to(c10::Device(device), /*non_blocking=*/false, /*copy=*/false);
    return static_cast<Napi::Value>(Napi::Number::New(env, store(host)));
  });
}

// toBuffer(handle) -> a new typed array with the tensor's values (copied to the host, made contiguous).
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& tensor = tensorAt(env, info[0]);
  return guarded(env, "toBuffer", [&]() {
    at::Tensor host = tensor.to(at::kCPU).contiguous();
    size_t count = host.numel();
    size_t bytes = count * host.element_size();
    auto buffer = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(buffer.Data(), host.data_ptr(), bytes);
    switch (host.scalar_type()) {
      case at::kFloat: return static_cast<Napi::Value>(Napi::Float32Array::New(env, count, buffer, 0));
      case at::kInt: return static_cast<Napi::Value>(Napi::Int32Array::New(env, count, buffer, 0));
      case at::kBool:
      case at::kByte: return static_cast<Napi::Value>(Napi::Uint8Array::New(env, count, buffer, 0));
      case at::kDouble: return static_cast<Napi::Value>(Napi::Float64Array::New(env, count, buffer, 0));
      case at::kLong: return static_cast<Napi::Value>(Napi::BigInt64Array::New(env, count, buffer, 0));
      default:
        throw Napi::Error::New(env, std::string("cannot read a ") + scalarTypeName(host.scalar_type()) + " tensor");
    }
  });
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  tensorAt(env, info[0]);
  int32_t id = info[0].As<Napi::Number>().Int32Value();
  slots[id] = at::Tensor();
  freeSlots.push_back(id);
  liveTensors--;
  return env.Undefined();
}

Napi::Array shapeArray(const Napi::Env& env, const at::Tensor& tensor) {
  auto shape = Napi::Array::New(env, tensor.dim());
  for (int64_t i = 0; i < tensor.dim(); i++) shape.Set(i, Napi::Number::New(env, static_cast<double>(tensor.size(i))));
  return shape;
}

// describe(handle) -> { shape, dtype, device }: for tests and error messages.
Napi::Value Describe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& tensor = tensorAt(env, info[0]);
  auto out = Napi::Object::New(env);
  out.Set("shape", shapeArray(env, tensor));
  out.Set("dtype", scalarTypeName(tensor.scalar_type()));
  out.Set("device", tensor.device().str());
  return out;
}

// shapeOf(handle) -> number[]: what every kernel needs to describe its output to tfjs.
Napi::Value ShapeOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return shapeArray(env, tensorAt(env, info[0]));
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(liveTensors));
}

// loadLibrary(path): dlopen an operator library (torchvision's) whose static initializers register its
// operators with the dispatcher.
Napi::Value LoadLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw Napi::Error::New(env, std::string("cannot load ") + path + ": " + (why ? why : "unknown error"));
  }
  return env.Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // A 1-element read forces every queued kernel on the tensor's device to finish (no CUDA headers needed).
  if (info.Length() > 0 && info[0].IsNumber()) {
    const at::Tensor& tensor = tensorAt(env, info[0]);
    return guarded(env, "synchronize", [&]() {
      if (tensor.numel() > 0) (void)tensor.reshape({-1})[0].item();
      return env.Undefined();
    });
  }
  return env.Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("version", FEDCXR_LIBTORCH_VERSION);
  out.Set("cuda", at::hasCUDA());
  out.Set("cudaDevices", at::hasCUDA() ? static_cast<double>(at::getNumGPUs()) : 0.0);
  out.Set("threads", at::get_num_threads());
  out.Set("parallel", at::get_parallel_info());
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  enterInferenceMode();
  exports.Set("findOperator", Napi::Function::New(env, FindOperator));
  exports.Set("call", Napi::Function::New(env, Call));
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("shapeOf", Napi::Function::New(env, ShapeOf));
  exports.Set("describe", Napi::Function::New(env, Describe));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors));
  exports.Set("loadLibrary", Napi::Function::New(env, LoadLibrary));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(fedcxr_torch, Init)
