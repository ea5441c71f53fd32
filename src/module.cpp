// ualign._core: wires the binding areas together.
#include "bindings.hpp"

namespace ualign::bind {
void register_ranking(py::module_& m);
void register_info(py::module_& m);
void register_batch(py::module_& m);
void register_pl(py::module_& m);
void register_committee(py::module_& m);
}  // namespace ualign::bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "ualign's compiled core (private: use the ualign package).";
  ualign::bind::register_info(m);
  ualign::bind::register_ranking(m);
  ualign::bind::register_batch(m);
  ualign::bind::register_pl(m);
  ualign::bind::register_committee(m);
}
