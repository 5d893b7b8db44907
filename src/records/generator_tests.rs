//! Generator tests against Mesos-DNS fixtures.
