// Android Studio project for the edge-sdk digit demo. Open this directory (android_demo/app) in
// Android Studio. Not compiled or run in edge-sdk's CI: see ../README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "EdgeSdkDigits"
include(":app")
// The plain-Java core (manifest, preprocessing, quantization, top-k) that CI tests with Maven.
include(":core")
project(":core").projectDir = file("../core")
